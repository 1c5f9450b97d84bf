package logsafe_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/btcpipe/btcpipe/internal/logsafe"
)

func TestEscape(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"/Satoshi:27.0.0/", "/Satoshi:27.0.0/"},
		{"\x1b]0;pwned\x07", `\x1b]0;pwned\x07`},
		{"\x1b[2J", `\x1b[2J`},
		{"a\nb\r", `a\x0ab\x0d`},
		{"\u009b31m", `\u009b31m`}, // C1 CSI
		{"\xff\xfe", `\xff\xfe`},   // not UTF-8
		{"héllo ✓", "héllo ✓"},
		{"del\x7f", `del\x7f`},
	} {
		if got := logsafe.Escape(tt.in); got != tt.want {
			t.Errorf("Escape(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	clean := "/btcpipe:0.1.0/"
	if n := testing.AllocsPerRun(100, func() { _ = logsafe.Escape(clean) }); n != 0 {
		t.Errorf("Escape of a clean string allocated %.0f times", n)
	}
}

func TestFormatter(t *testing.T) {
	var out bytes.Buffer
	l := logrus.New()
	l.SetOutput(&out)
	l.SetFormatter(logsafe.Formatter{Inner: &logrus.TextFormatter{ForceColors: true, DisableTimestamp: true}})
	evil := "\x1b]0;title\x07\x1b[2J"
	l.WithFields(logrus.Fields{"ua": evil, logrus.ErrorKey: errors.New("bad " + evil), "n": 3}).
		Warnf("peer says %s\nsecond line of ours", evil)
	got := out.String()
	if strings.Contains(got, "\x07") || strings.Contains(got, "\x1b]") || strings.Contains(got, "\x1b[2J") {
		t.Fatalf("the peer's escape sequences reached the output: %q", got)
	}
	// Only the formatter's own colour codes (ESC [ digits m) remain.
	rest := got
	for {
		i := strings.IndexByte(rest, 0x1b)
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i:], 'm')
		if j < 0 || strings.Trim(rest[i+2:i+j], "0123456789;") != "" || rest[i+1] != '[' {
			t.Fatalf("an escape that is not a colour code: %q", rest[i:])
		}
		rest = rest[i+j:]
	}
	if !strings.Contains(got, `\x1b]0;title\x07`) || !strings.Contains(got, "\nsecond line of ours") {
		t.Errorf("want the sequence shown escaped and our own newline kept: %q", got)
	}
}
