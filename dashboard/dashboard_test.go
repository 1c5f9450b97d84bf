package dashboard

import (
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/btcpipe/btcpipe/internal/textfmt"
	"github.com/btcpipe/btcpipe/monitor"
)

func TestMain(m *testing.M) {
	code := m.Run()
	stopBrowser()
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener")); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// fixture is a generated database served by the API and the dashboard.
type fixture struct {
	*generated
	srv *httptest.Server
}

func newFixture(t testing.TB, nodes, snaps int) *fixture {
	t.Helper()
	g := generate(t, nodes, snaps, time.Hour)
	srv := httptest.NewServer(mux(g.store, New(g.store, nil, nil)))
	t.Cleanup(srv.Close)
	return &fixture{generated: g, srv: srv}
}

func fetch(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

func page(t *testing.T, url string) string {
	t.Helper()
	code, body, h := fetch(t, url)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d\n%s", url, code, body)
	}
	if ct := h.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("GET %s: Content-Type %q", url, ct)
	}
	if h.Get("Content-Security-Policy") != ContentSecurityPolicy {
		t.Errorf("GET %s: no Content-Security-Policy", url)
	}
	return body
}

var tileRe = regexp.MustCompile(`<div class="tile" id="tile-([a-z0-9-]+)"><div class="label">[^<]*</div><div class="value num">([^<]*)</div>`)

func tiles(body string) map[string]string {
	out := map[string]string{}
	for _, m := range tileRe.FindAllStringSubmatch(body, -1) {
		out[m[1]] = m[2]
	}
	return out
}

func TestOverviewShowsTheCounts(t *testing.T) {
	fx := newFixture(t, 400, 30)
	body := page(t, fx.srv.URL+"/")
	got := tiles(body)
	if want := textfmt.Group(fx.reachable); got["reachable"] != want {
		t.Errorf("reachable tile = %q, want %q", got["reachable"], want)
	}
	for _, n := range []string{"ipv4", "ipv6", "torv3", "i2p", "cjdns"} {
		if want := textfmt.Group(fx.byNetwork[n]); got["net-"+n] != want {
			t.Errorf("%s tile = %q, want %q", n, got["net-"+n], want)
		}
	}
	// The user agent bars carry their counts.
	for ua, n := range fx.byAgent {
		if n < 8 || ua == XSSAgent {
			continue // the small ones may be folded into "others"
		}
		want := fmt.Sprintf(`data-label="%s" data-value="%d"`, html.EscapeString(ua), n)
		if !strings.Contains(body, want) {
			t.Errorf("overview lacks the bar %s", want)
		}
	}
	// The chart over time has one point per snapshot (30 < 400 points).
	if !strings.Contains(body, `data-points="30"`) {
		t.Error("the chart over time does not have 30 points")
	}
	if !strings.Contains(body, fmt.Sprintf(`data-key="all" data-last="%d"`, fx.reachable)) {
		t.Errorf("the line of all networks does not end at %d", fx.reachable)
	}
}

var rowRe = regexp.MustCompile(`(?s)<tr data-addr="([^"]*)">(.*?)</tr>`)
var cellRe = regexp.MustCompile(`(?s)<td[^>]*>(.*?)</td>`)
var tagRe = regexp.MustCompile(`<[^>]*>`)

// rows returns the node table's rows as cell texts.
func rows(body string) [][]string {
	var out [][]string
	for _, m := range rowRe.FindAllStringSubmatch(body, -1) {
		var cells []string
		for _, c := range cellRe.FindAllStringSubmatch(m[2], -1) {
			cells = append(cells, strings.TrimSpace(html.UnescapeString(tagRe.ReplaceAllString(c[1], ""))))
		}
		out = append(out, cells)
	}
	return out
}

func msOf(s string) float64 {
	s = strings.TrimSpace(s)
	if strings.HasSuffix(s, " s") {
		v, _ := strconv.ParseFloat(strings.TrimSuffix(s, " s"), 64)
		return v * 1000
	}
	v, _ := strconv.ParseFloat(strings.TrimSuffix(s, " ms"), 64)
	return v
}

func TestNodeListSearchesSortsAndPages(t *testing.T) {
	fx := newFixture(t, 400, 10)
	// Search by user agent, sorted by latency, slowest first.
	want := 0
	for _, o := range fx.latest {
		if strings.Contains(strings.ToLower(o.UserAgent), "satoshi:27.1") {
			want++
		}
	}
	body := page(t, fx.srv.URL+"/nodes?q=Satoshi:27.1&sort=latency&order=desc")
	rs := rows(body)
	if len(rs) != min(want, PageSize) || !strings.Contains(body, fmt.Sprintf(`data-total="%d"`, want)) {
		t.Fatalf("search Satoshi:27.1: %d rows, want %d", len(rs), want)
	}
	for i, r := range rs {
		if !strings.Contains(r[3], "/Satoshi:27.1") {
			t.Errorf("row %d: user agent %q does not match", i, r[3])
		}
		if i > 0 && msOf(r[5]) > msOf(rs[i-1][5]) {
			t.Errorf("row %d: latency %s after %s: not descending", i, r[5], rs[i-1][5])
		}
	}
	// Every node, by address, second page.
	body = page(t, fx.srv.URL+"/nodes?page=2")
	rs = rows(body)
	var addrs []string
	for a := range fx.allLatest() {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	if len(rs) != PageSize {
		t.Fatalf("page 2: %d rows", len(rs))
	}
	for i, r := range rs {
		if r[0] != addrs[PageSize+i] && !strings.HasPrefix(r[0], addrs[PageSize+i]+" ") {
			t.Fatalf("page 2 row %d: %q, want %q", i, r[0], addrs[PageSize+i])
		}
	}
	if !strings.Contains(body, `rel="prev"`) || !strings.Contains(body, `rel="next"`) {
		t.Error("page 2 has no previous or next link")
	}
	// A filter by network and outcome.
	body = page(t, fx.srv.URL+"/nodes?network=torv3&outcome=reachable&sort=uptime&order=desc")
	if !strings.Contains(body, fmt.Sprintf(`data-total="%d"`, fx.byNetwork["torv3"])) {
		t.Errorf("Tor and reachable: want %d nodes", fx.byNetwork["torv3"])
	}
	for _, r := range rows(body) {
		if r[1] != "Tor" || strings.TrimSuffix(r[2], " good") != "reachable" {
			t.Errorf("row %v: not a reachable Tor node", r)
		}
	}
	// The column headers sort, and say which sorts.
	if !strings.Contains(body, `aria-sort="descending" class="n"><a href="/nodes?network=torv3&amp;outcome=reachable&amp;sort=uptime">Uptime<`) {
		t.Errorf("the uptime header does not say it sorts descending, or does not link to ascending:\n%s", regexp.MustCompile(`<th[^>]*><a[^>]*>Uptime`).FindString(body))
	}
}

// allLatest lists every address of the newest snapshot.
func (g *generated) allLatest() map[string]bool {
	out := map[string]bool{}
	snaps := len(g.ids)
	for _, nd := range g.nodes {
		if snaps-1 >= nd.join && snaps-1 < nd.leave {
			out[nd.addr] = true
		}
	}
	return out
}

func TestNodePageShowsItsHistory(t *testing.T) {
	fx := newFixture(t, 60, 20)
	body := page(t, fx.srv.URL+nodeURL(fx.upgraded))
	for _, want := range []string{
		`<h1 class="addr-title">203.0.113.10:8333`,
		`<td>user agent</td><td class="ua">/Satoshi:26.1.0/</td><td class="ua">/Satoshi:28.1.0/</td>`,
		`class="run reachable"`,
		`<th scope="row">2 hours</th>`,
		`NETWORK · WITNESS · NETWORK_LIMITED · P2P_V2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("node page lacks %s", want)
		}
	}
	if n := strings.Count(body, `class="run reachable"`); n != 2 {
		t.Errorf("%d runs on the timeline, want 2 (before and after the upgrade)", n)
	}
	// A node of every network has its page.
	seen := map[string]bool{}
	for addr, o := range fx.latest {
		if seen[o.Network] {
			continue
		}
		seen[o.Network] = true
		if body := page(t, fx.srv.URL+nodeURL(addr)); !strings.Contains(body, html.EscapeString(addr)) {
			t.Errorf("the page of %s (%s) does not name it", addr, o.Network)
		}
	}
	if len(seen) != 5 {
		t.Errorf("reachable nodes of %d networks, want 5", len(seen))
	}
	// The latency chart has the runs' points.
	if !strings.Contains(body, `aria-label="Connect latency over time from`) {
		t.Error("no latency chart")
	}
}

func TestLongHistoryIsCut(t *testing.T) {
	fx := newFixture(t, 10, 120)
	// A flaky node's long history is cut to the newest rows, with a link
	// to all of them.
	body := page(t, fx.srv.URL+nodeURL(fx.flaky))
	if n := strings.Count(body, "<td>outcome</td>"); n != HistoryRows || !strings.Contains(body, "?all=1&amp;range=30d#ch-h") {
		t.Errorf("the flaky node's page lists %d changes, want the newest %d and a link to all", n, HistoryRows)
	}
	body = page(t, fx.srv.URL+nodeURL(fx.flaky)+"?all=1")
	if n := strings.Count(body, "<td>outcome</td>"); n <= HistoryRows {
		t.Errorf("?all=1 lists %d changes, want them all (more than %d)", n, HistoryRows)
	}
}

func TestInterruptedSnapshot(t *testing.T) {
	fx := newFixture(t, 30, 4)
	body := page(t, fx.srv.URL+fmt.Sprintf("/snapshots/%d", fx.interrupted))
	if !strings.Contains(body, "This snapshot is <b>interrupted</b>: its nodes were not stored") || strings.Contains(body, "/export?") {
		t.Error("an interrupted snapshot's page does not say its nodes were not stored, or offers exports")
	}
	if list := page(t, fx.srv.URL+"/snapshots"); !strings.Contains(list, `<span class="status status-interrupted">interrupted</span>`) {
		t.Error("the snapshot list does not mark the interrupted one")
	}
}

func TestPeerStringsAreEscaped(t *testing.T) {
	fx := newFixture(t, 60, 5)
	id := fx.ids[len(fx.ids)-1]
	for _, path := range []string{"/", "/nodes?q=evil", "/nodes?sort=user_agent&order=desc", nodeURL(fx.xss), fmt.Sprintf("/snapshots/%d", id)} {
		body := page(t, fx.srv.URL+path)
		if strings.Contains(body, "<script>window") || strings.Contains(body, "<img src=x") {
			t.Errorf("%s: the user agent is not escaped", path)
		}
		if !strings.Contains(body, "&lt;script&gt;window.__pwned=1&lt;/script&gt;") {
			t.Errorf("%s: the escaped user agent is not shown", path)
		}
	}
}

func TestBadRequestsGetClearErrors(t *testing.T) {
	fx := newFixture(t, 30, 3)
	for _, c := range []struct {
		path string
		code int
		msg  string
	}{
		{"/nodes?sort=bogus", 400, "not a column to sort by"},
		{"/nodes?order=up", 400, "want asc or desc"},
		{"/nodes?page=0", 400, "want a whole number"},
		{"/nodes?q=" + strings.Repeat("a", 300), 400, "at most 256"},
		{"/nodes/192.0.2.99:8333", 404, "not found"},
		{"/nodes/nonsense", 400, "want host:port"},
		{"/snapshots/abc", 400, "want a positive integer"},
		{"/snapshots/99999", 404, "not found"},
		{"/?range=1y", 400, "want one of"},
		{"/nowhere", 404, "no page at /nowhere"},
	} {
		code, body, h := fetch(t, fx.srv.URL+c.path)
		if code != c.code || !strings.Contains(body, c.msg) || !strings.Contains(h.Get("Content-Type"), "text/html") {
			t.Errorf("GET %s: %d, want %d with %q", c.path, code, c.code, c.msg)
		}
	}
	resp, err := http.Post(fx.srv.URL+"/nodes", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /nodes: %d, want 405", resp.StatusCode)
	}
}

var urlAttrRe = regexp.MustCompile(`(?i)(?:src|href|action)="([^"]*)"`)

func TestEverythingIsServedFromTheBinary(t *testing.T) {
	fx := newFixture(t, 40, 3)
	id := fx.ids[len(fx.ids)-1]
	seen := map[string]bool{}
	for _, path := range []string{"/", "/nodes", nodeURL(fx.upgraded), "/snapshots", fmt.Sprintf("/snapshots/%d", id)} {
		body := page(t, fx.srv.URL+path)
		for _, m := range urlAttrRe.FindAllStringSubmatch(body, -1) {
			u := html.UnescapeString(m[1])
			if strings.HasPrefix(u, "#") {
				continue
			}
			if !strings.HasPrefix(u, "/") || strings.HasPrefix(u, "//") {
				t.Errorf("%s links off the dashboard: %q", path, u)
				continue
			}
			seen[u] = true
		}
	}
	// Every link within the dashboard and the API answers.
	for u := range seen {
		if strings.HasPrefix(u, "/metrics") {
			continue // served by btcpipe monitor beside the dashboard
		}
		code, _, _ := fetch(t, fx.srv.URL+u)
		if code != http.StatusOK {
			t.Errorf("link %s: %d", u, code)
		}
	}
	for _, f := range []string{"/static/style.css", "/static/live.js", "/static/icon.svg"} {
		code, body, _ := fetch(t, fx.srv.URL+f)
		if code != 200 || strings.Contains(body, "http://") && !strings.Contains(body, "http://www.w3.org/2000/svg") || strings.Contains(body, "https://") {
			t.Errorf("%s: %d, or it names another host", f, code)
		}
	}
}

func TestEmptyDatabase(t *testing.T) {
	s, err := monitor.Open(context.Background(), filepath.Join(t.TempDir(), "empty.db"), "v", "mainnet")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	srv := httptest.NewServer(mux(s, New(s, nil, nil)))
	defer srv.Close()
	if body := page(t, srv.URL+"/"); !strings.Contains(body, "No complete snapshot yet") {
		t.Error("the overview of an empty database does not say so")
	}
	page(t, srv.URL+"/snapshots")
	if code, body, _ := fetch(t, srv.URL+"/nodes"); code != 404 || !strings.Contains(body, "no complete snapshot yet") {
		t.Errorf("/nodes of an empty database: %d", code)
	}
}

func TestLiveProgress(t *testing.T) {
	s, err := monitor.Open(context.Background(), filepath.Join(t.TempDir(), "p.db"), "v", "mainnet")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	started := time.Now()
	d := New(s, func() monitor.Progress {
		return monitor.Progress{APIVersion: "1", Vantage: "v", Running: true, Snapshot: 7, Started: &started, Tried: 12, Done: 10, Queued: 30}
	}, nil)
	srv := httptest.NewServer(d)
	defer srv.Close()
	code, body, h := fetch(t, srv.URL+PathProgress)
	if code != 200 || h.Get("Content-Type") != "application/json; charset=utf-8" || !strings.Contains(body, `"tried":12`) {
		t.Errorf("%s: %d %s", PathProgress, code, body)
	}
	if body := page(t, srv.URL+"/"); !strings.Contains(body, `running · snapshot #7`) || !strings.Contains(body, `value="25"`) {
		t.Error("the overview does not show the crawl in flight (snapshot 7, 10 of 40 done)")
	}
}

func TestOddInputNeverBreaksAPage(t *testing.T) {
	fx := newFixture(t, 30, 3)
	for _, q := range []string{
		"/nodes?q=%00%ff%fe", "/nodes?q=%3Cscript%3Ealert(1)%3C/script%3E", "/nodes?q=%25%5F%5C", "/nodes?q=日本語",
		"/nodes?page=99999999999999999999", "/nodes?page=1048576", "/nodes?network=%3Cblink%3E", "/nodes?outcome=nope&q=x",
		"/nodes/%3Cscript%3E:1", "/nodes/%5B::1%5D:8333", "/snapshots/-1", "/snapshots?page=abc", "/?range=%00",
		"/nodes?sort=%3Cx%3E", "/snapshots/1/../../etc/passwd", "/static/../dashboard.go",
	} {
		code, body, _ := fetch(t, fx.srv.URL+q)
		if code >= 500 {
			t.Errorf("GET %s: %d", q, code)
		}
		if strings.Contains(body, "<script>alert") || strings.Contains(body, "<blink>") {
			t.Errorf("GET %s: the input is echoed unescaped", q)
		}
	}
}

func TestDatabaseGoneGivesA503Page(t *testing.T) {
	s, err := monitor.Open(context.Background(), filepath.Join(t.TempDir(), "gone.db"), "v", "mainnet")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(s, nil, nil))
	defer srv.Close()
	s.Close()
	for _, p := range []string{"/", "/nodes", "/snapshots", "/nodes/192.0.2.1:8333"} {
		code, body, _ := fetch(t, srv.URL+p)
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "the database cannot answer now") {
			t.Errorf("GET %s with the database closed: %d", p, code)
		}
	}
	if code, _, _ := fetch(t, srv.URL+"/static/style.css"); code != 200 {
		t.Errorf("the stylesheet of the error page: %d", code)
	}
}
