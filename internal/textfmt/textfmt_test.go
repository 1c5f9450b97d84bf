package textfmt

import "testing"

func TestGroup(t *testing.T) {
	for _, tt := range []struct {
		n    int64
		want string
	}{{0, "0"}, {999, "999"}, {1000, "1,000"}, {-1234567, "-1,234,567"}, {100000, "100,000"}} {
		if got := Group(tt.n); got != tt.want {
			t.Errorf("Group(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
	if got := Group(int32(-999)); got != "-999" {
		t.Errorf("Group(int32(-999)) = %q", got)
	}
}

func TestPercent(t *testing.T) {
	for _, tt := range []struct {
		part, total int
		want        string
	}{{0, 0, "0%"}, {0, 5, "0%"}, {5, 5, "100%"}, {1, 3, "33.3%"}, {1, 10000, "<0.1%"}, {999, 1000, "99.9%"}} {
		if got := Percent(tt.part, tt.total); got != tt.want {
			t.Errorf("Percent(%d, %d) = %q, want %q", tt.part, tt.total, got, tt.want)
		}
	}
}

func TestShorten(t *testing.T) {
	for _, tt := range []struct {
		s    string
		n    int
		want string
	}{{"abc", 3, "abc"}, {"abcd", 3, "ab…"}, {"/Satoshi:28.0.0/", 10, "/Satoshi:…"}, {"ééééé", 4, "ééé…"}} {
		if got := Shorten(tt.s, tt.n); got != tt.want {
			t.Errorf("Shorten(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
		}
	}
}
