package monitor

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// apiFixture is a store with three snapshots behind an API server.
func apiFixture(t *testing.T, dsn string) (*Store, *httptest.Server) {
	t.Helper()
	s := open(t, dsn)
	for i := range 3 {
		at := t0.Add(time.Duration(i) * 10 * time.Minute)
		write(t, s, at,
			reachable("127.0.0.1:18444", "/Satoshi:27.0.0/", 100, at),
			reachable("[::1]:18444", "/evil <script>alert(1)</script> ua/", 100, at),
			failed("127.0.0.3:18444", at))
	}
	srv := httptest.NewServer(NewAPI(s, nil, nil).Handler())
	t.Cleanup(srv.Close)
	return s, srv
}

func get(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestAPI(t *testing.T) {
	forEach(t, func(t *testing.T, dsn string) {
		_, srv := apiFixture(t, dsn)
		tests := []struct {
			path     string
			code     int
			contains string
		}{
			{"/api/v1/snapshots", 200, `"total":3`},
			{"/api/v1/snapshots?limit=1&offset=2", 200, `"id":1,`},
			{"/api/v1/snapshots/latest", 200, `"addr":"127.0.0.1:18444"`},
			{"/api/v1/snapshots/latest?q=SCRIPT", 200, `"total":1`},
			{"/api/v1/snapshots/latest?outcome=refused", 200, `"addr":"127.0.0.3:18444"`},
			{"/api/v1/snapshots/2?sort=uptime&order=desc&limit=1", 200, `"limit":1`},
			{"/api/v1/snapshots/latest", 200, `\u003cscript\u003e`},
			{"/api/v1/nodes/127.0.0.1:18444", 200, `"tries":3`},
			{"/api/v1/nodes/[::1]:18444?since=2025-12-31T00:00:00Z", 200, `"runs":[{`},
			{"/api/v1/stats?dims=network,user_agent&top=1", 200, `"(other)":1`},
			{"/api/v1/progress", 200, `"running":false`},
			// Malformed requests: 4xx with a JSON error.
			{"/api/v1/snapshots/abc", 400, `"error":"snapshot id \"abc\"`},
			{"/api/v1/snapshots/0", 400, `"error"`},
			{"/api/v1/snapshots/999", 404, `"error"`},
			{"/api/v1/snapshots?limit=0", 400, `"error":"limit=`},
			{"/api/v1/snapshots?limit=x", 400, `"error"`},
			{"/api/v1/snapshots?bogus=1", 400, `unknown parameter \"bogus\"`},
			{"/api/v1/snapshots/latest?sort=bogus", 400, `"error":"sort=`},
			{"/api/v1/snapshots/latest?order=up", 400, `"error"`},
			{"/api/v1/nodes/nonsense", 400, `"error"`},
			{"/api/v1/nodes/127.9.9.9:1", 404, `"error"`},
			{"/api/v1/nodes/127.0.0.1:18444?since=yesterday", 400, `"error"`},
			{"/api/v1/stats?dims=bogus", 400, `"error"`},
			{"/api/v1/stats?points=1", 400, `"error"`},
			{"/api/v1/nothing", 404, `"error"`},
			{"/api/v2/snapshots", 404, `"error"`},
			{"/api/v1/snapshots/latest/export?format=xml", 400, `"error":"format=`},
			{"/api/v1/snapshots/latest/export", 400, `"error"`},
		}
		for _, tt := range tests {
			code, body, h := get(t, srv.URL+tt.path)
			if code != tt.code || !strings.Contains(body, tt.contains) {
				t.Errorf("GET %s = %d %s, want %d containing %s", tt.path, code, body, tt.code, tt.contains)
				continue
			}
			if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("GET %s: Content-Type %q", tt.path, ct)
			}
			if code >= 400 {
				var e APIError
				if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" || e.APIVersion != APIVersion {
					t.Errorf("GET %s: error body %s does not parse as APIError (%v)", tt.path, body, err)
				}
			}
		}
		resp, err := http.Post(srv.URL+"/api/v1/snapshots", "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 405 || !strings.Contains(string(b), `"error"`) {
			t.Errorf("POST = %d %s, want 405 with a JSON error", resp.StatusCode, b)
		}
	})
}

// parseSeedLine is makeseeds.py's parseline (Bitcoin Core
// contrib/seeds/makeseeds.py) in Go: the fields it reads, as it reads them.
func parseSeedLine(line string) (map[string]string, bool) {
	if strings.HasPrefix(line, "#") {
		return nil, false
	}
	sline := strings.Fields(line)
	if len(sline) < 11 {
		return nil, false
	}
	if good, err := strconv.Atoi(sline[1]); err != nil || good == 0 {
		return nil, false
	}
	out := map[string]string{"addr": sline[0], "uptime30": strings.TrimSuffix(sline[7], "%"), "lastsuccess": sline[2],
		"version": sline[10], "agent": sline[11][1 : len(sline[11])-1], "service": sline[9], "blocks": sline[8]}
	for _, k := range []string{"lastsuccess", "version", "blocks"} {
		if _, err := strconv.Atoi(out[k]); err != nil {
			return nil, false
		}
	}
	if _, err := strconv.ParseFloat(out["uptime30"], 64); err != nil {
		return nil, false
	}
	if _, err := strconv.ParseUint(out["service"], 16, 64); err != nil {
		return nil, false
	}
	return out, true
}

func TestExports(t *testing.T) {
	_, srv := apiFixture(t, backends[0].dsn(t))
	code, body, h := get(t, srv.URL+"/api/v1/snapshots/latest/export?format=csv")
	if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/csv") {
		t.Fatalf("csv: %d %s", code, h.Get("Content-Type"))
	}
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 || !reflect.DeepEqual(rows[0], CSVHeader) || rows[3][4] != "/evil <script>alert(1)</script> ua/" {
		t.Errorf("csv rows: %q", rows)
	}
	code, body, _ = get(t, srv.URL+"/api/v1/snapshots/3/export?format=jsonl")
	sc := bufio.NewScanner(strings.NewReader(body))
	n := 0
	for sc.Scan() {
		var e NodeEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Addr == "" {
			t.Errorf("jsonl line %q: %v", sc.Text(), err)
		}
		n++
	}
	if code != 200 || n != 3 {
		t.Errorf("jsonl: %d, %d lines, want 200 and 3", code, n)
	}
	code, body, _ = get(t, srv.URL+"/api/v1/snapshots/latest/export?format=seeds")
	lines := strings.Split(strings.TrimSpace(body), "\n")
	if code != 200 || len(lines) != 3 || lines[0] != SeedsHeader {
		t.Fatalf("seeds: %d\n%s", code, body)
	}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) != 12 {
			t.Errorf("seed line has %d fields, want 12: %q", len(f), l)
			continue
		}
		// regtest's port is 18444: the node is good as the seeder counts.
		got, ok := parseSeedLine(l)
		if !ok {
			t.Errorf("makeseeds would skip %q", l)
			continue
		}
		if got["version"] != "70016" || got["blocks"] != "100" || got["service"] != "0000000000000409" {
			t.Errorf("seed line %q parsed as %v", l, got)
		}
		if strings.Contains(got["addr"], "::1") && got["agent"] != "/evil_<script>alert(1)</script>_ua/" {
			t.Errorf("user agent with spaces: makeseeds reads %q", got["agent"])
		}
	}
}

// structFields lists "Type.json_name kind" for every exported JSON field of
// t and of the struct types it reaches.
func structFields(t reflect.Type, seen map[string]bool, out *[]string) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t.PkgPath() != reflect.TypeFor[SnapshotInfo]().PkgPath() || seen[t.Name()] {
		return
	}
	seen[t.Name()] = true
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" || name == "" {
			continue
		}
		*out = append(*out, t.Name()+"."+name+" "+jsonKind(f.Type))
		structFields(f.Type, seen, out)
	}
}

func jsonKind(t reflect.Type) string {
	switch {
	case t == reflect.TypeFor[time.Time]() || t == reflect.TypeFor[*time.Time]():
		return "time"
	case t.Kind() == reflect.Pointer:
		return jsonKind(t.Elem())
	case t.Kind() == reflect.Slice:
		return "[]" + jsonKind(t.Elem())
	case t.Kind() == reflect.Map:
		return "map:" + jsonKind(t.Elem())
	case t.Kind() == reflect.Struct:
		return t.Name()
	case t.Kind() == reflect.Bool:
		return "bool"
	case t.Kind() == reflect.String:
		return "string"
	default:
		return "number"
	}
}

// TestAPIFieldsArePinned: every field of API version 1 is listed in
// testdata/api-v1-fields.txt and documented in API.md. A field that
// disappears or changes kind fails this test; a new one must be added to
// both files.
func TestAPIFieldsArePinned(t *testing.T) {
	var got []string
	seen := map[string]bool{}
	for _, v := range []any{SnapshotList{}, SnapshotPage{}, NodeHistory{}, Stats{}, Progress{}, APIError{}} {
		structFields(reflect.TypeOf(v), seen, &got)
	}
	sort.Strings(got)
	if os.Getenv("BTCPIPE_UPDATE_GOLDEN") == "1" {
		os.WriteFile("testdata/api-v1-fields.txt", []byte(strings.Join(got, "\n")+"\n"), 0o644)
	}
	b, err := os.ReadFile("testdata/api-v1-fields.txt")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Split(strings.TrimSpace(string(b)), "\n")
	have := map[string]bool{}
	for _, g := range got {
		have[g] = true
	}
	for _, w := range want {
		if !have[w] {
			t.Errorf("API v%s field %q has disappeared or changed kind", APIVersion, w)
		}
	}
	pinned := map[string]bool{}
	for _, w := range want {
		pinned[w] = true
	}
	doc, err := os.ReadFile("API.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range got {
		if !pinned[g] {
			t.Errorf("new field %q: add it to testdata/api-v1-fields.txt and API.md", g)
		}
		name, _, _ := strings.Cut(g, " ")
		if !strings.Contains(string(doc), "`"+name+"`") {
			t.Errorf("field %s is not documented in API.md", name)
		}
	}
}

var _ = context.Background
