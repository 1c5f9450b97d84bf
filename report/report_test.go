package report_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/btcpipe/btcpipe/crawler"
	"github.com/btcpipe/btcpipe/report"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// node is an element of the parsed page.
type node struct {
	Name     string
	Attr     map[string]string
	Children []*node
	Text     string // character data directly inside
	Parent   *node
}

// parse checks that page is well-formed XML (the report's markup is
// XHTML-compatible) and returns its root element.
func parse(t *testing.T, page []byte) *node {
	t.Helper()
	if !bytes.HasPrefix(page, []byte("<!DOCTYPE html>\n")) {
		t.Errorf("page does not start with <!DOCTYPE html>")
	}
	d := xml.NewDecoder(bytes.NewReader(page))
	d.Strict = true
	var root *node
	var cur *node
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the page is not well formed: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			n := &node{Name: tok.Name.Local, Attr: map[string]string{}, Parent: cur}
			for _, a := range tok.Attr {
				n.Attr[a.Name.Local] = a.Value
			}
			if cur == nil {
				if root != nil {
					t.Fatal("more than one root element")
				}
				root = n
			} else {
				cur.Children = append(cur.Children, n)
			}
			cur = n
		case xml.EndElement:
			cur = cur.Parent
		case xml.CharData:
			if cur != nil {
				cur.Text += string(tok)
			}
		}
	}
	if root == nil || root.Name != "html" {
		t.Fatalf("root element is %v, want html", root)
	}
	return root
}

// all returns every element under n (n included) called name.
func (n *node) all(name string) []*node {
	var out []*node
	var walk func(*node)
	walk = func(e *node) {
		if e.Name == name {
			out = append(out, e)
		}
		for _, c := range e.Children {
			walk(c)
		}
	}
	walk(n)
	return out
}

// text returns all character data under n.
func (n *node) text() string {
	s := n.Text
	for _, c := range n.Children {
		s += c.text()
	}
	return s
}

// bars returns data-label → data-value of n's elements of class cls.
func bars(t *testing.T, n *node, cls string) map[string]int {
	t.Helper()
	out := map[string]int{}
	var walk func(*node)
	walk = func(e *node) {
		if e.Attr["class"] == cls {
			label := e.Attr["data-label"]
			v, err := strconv.Atoi(e.Attr["data-value"])
			if err != nil {
				t.Errorf("%s %q: data-value %q: %v", cls, label, e.Attr["data-value"], err)
			}
			if _, dup := out[label]; dup {
				t.Errorf("two %s elements labelled %q", cls, label)
			}
			out[label] = v
		}
		for _, c := range e.Children {
			walk(c)
		}
	}
	walk(n)
	return out
}

// checkSelfContained requires a page with no script, no external resource
// and no event handler.
func checkSelfContained(t *testing.T, root *node, page []byte) {
	t.Helper()
	for _, name := range []string{"script", "link", "img", "iframe", "object", "embed", "image", "use", "foreignObject"} {
		if n := len(root.all(name)); n > 0 {
			t.Errorf("the page has %d <%s> elements", n, name)
		}
	}
	var walk func(*node)
	walk = func(e *node) {
		for k, v := range e.Attr {
			if k == "src" || (k == "href" && !strings.HasPrefix(v, "#")) || strings.HasPrefix(k, "on") {
				t.Errorf("<%s %s=%q>: external reference or handler", e.Name, k, v)
			}
		}
		for _, c := range e.Children {
			walk(c)
		}
	}
	walk(root)
	for _, style := range root.all("style") {
		css := strings.ToLower(style.text())
		for _, bad := range []string{"@import", "url(", "@font-face"} {
			if strings.Contains(css, bad) {
				t.Errorf("the stylesheet has %s", bad)
			}
		}
	}
	if bytes.Contains(page, []byte("http://")) || bytes.Contains(page, []byte("https://")) {
		t.Error("the page names an http(s) URL")
	}
}

// sections returns the page's sections by id, requiring exactly the
// expected ones, in order, each with exactly one SVG chart.
func sections(t *testing.T, root *node) map[string]*node {
	t.Helper()
	out := map[string]*node{}
	var ids []string
	for _, s := range root.all("section") {
		id := s.Attr["id"]
		ids = append(ids, id)
		out[id] = s
		if n := len(s.all("svg")); n != 1 {
			t.Errorf("section %q has %d <svg> charts, want 1", id, n)
		}
		if h := s.all("h2"); len(h) != 1 || strings.TrimSpace(h[0].text()) == "" {
			t.Errorf("section %q has no heading", id)
		}
		for _, svg := range s.all("svg") {
			if svg.Attr["viewBox"] == "" || svg.Attr["role"] != "img" || svg.Attr["aria-label"] == "" {
				t.Errorf("section %q: svg lacks viewBox, role=img or aria-label: %v", id, svg.Attr)
			}
		}
	}
	if !slices.Equal(ids, report.Sections) {
		t.Errorf("sections %v, want %v", ids, report.Sections)
	}
	if n := len(root.all("svg")); n != len(report.Sections) {
		t.Errorf("%d <svg> in the page, want one per section (%d)", n, len(report.Sections))
	}
	return out
}

// want is what the JSON lines say, computed here independently of the
// report package.
type want struct {
	records, reachable, tried, notDialled int
	outcome                               map[string]int
	network                               map[string]map[string]int
	agents                                map[string]int
	protocols                             map[string]int
	services                              map[string]int
	transports                            map[string]int
	heights                               []int64
	handshakes                            []float64
	summary                               map[string]any
}

func fromLines(t *testing.T, lines []byte) want {
	t.Helper()
	w := want{outcome: map[string]int{}, network: map[string]map[string]int{}, agents: map[string]int{},
		protocols: map[string]int{}, services: map[string]int{}, transports: map[string]int{}}
	for i, line := range bytes.Split(bytes.TrimSpace(lines), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if m["type"] == "summary" {
			w.summary = m
			continue
		}
		w.records++
		o, n := m["outcome"].(string), m["network"].(string)
		w.outcome[o]++
		if w.network[n] == nil {
			w.network[n] = map[string]int{}
		}
		w.network[n][o]++
		if o == "not_dialled" {
			w.notDialled++
		} else {
			w.tried++
		}
		if ms, ok := m["handshake_ms"].(float64); ok {
			w.handshakes = append(w.handshakes, ms)
		}
		if o != "reachable" {
			continue
		}
		w.reachable++
		w.agents[m["user_agent"].(string)]++
		w.protocols[strconv.Itoa(int(m["protocol"].(float64)))]++
		svc, _ := m["services"].([]any)
		if len(svc) == 0 {
			w.services["NONE"]++
		}
		for _, s := range svc {
			w.services[s.(string)]++
		}
		if tr, ok := m["transport"].(string); ok {
			w.transports[tr]++
		}
		w.heights = append(w.heights, int64(m["start_height"].(float64)))
	}
	return w
}

// checkNumbers compares every chart of the page with the JSON lines.
func checkNumbers(t *testing.T, root *node, w want) {
	t.Helper()
	secs := sections(t, root)

	if got := bars(t, secs[report.SectionOutcomes], "bar"); !equalMaps(got, w.outcome) {
		t.Errorf("outcomes chart %v, JSON lines %v", got, w.outcome)
	}

	net := secs[report.SectionNetworks]
	rows := bars(t, net, "row")
	for name, byOutcome := range w.network {
		total := 0
		for _, v := range byOutcome {
			total += v
		}
		if rows[name] != total {
			t.Errorf("networks chart: %s = %d, JSON lines %d", name, rows[name], total)
		}
	}
	if len(rows) != len(w.network) {
		t.Errorf("networks chart has rows %v, JSON lines networks %v", rows, w.network)
	}
	for _, row := range net.all("g") {
		if row.Attr["class"] != "row" {
			continue
		}
		got := map[string]int{}
		for _, seg := range row.all("rect") {
			v, _ := strconv.Atoi(seg.Attr["data-value"])
			got[seg.Attr["data-outcome"]] = v
		}
		if name := row.Attr["data-label"]; !equalMaps(got, w.network[name]) {
			t.Errorf("networks chart, %s: %v, JSON lines %v", name, got, w.network[name])
		}
	}

	agents := bars(t, secs[report.SectionAgents], "bar")
	sum := 0
	for label, v := range agents {
		sum += v
		if label != report.OtherAgents && w.agents[label] != v {
			t.Errorf("user agents chart: %q = %d, JSON lines %d", label, v, w.agents[label])
		}
	}
	if sum != w.reachable {
		t.Errorf("user agents chart sums to %d, reachable nodes %d", sum, w.reachable)
	}
	if len(w.agents) > report.MaxAgents+1 {
		if len(agents) != report.MaxAgents+1 || agents[report.OtherAgents] == 0 {
			t.Errorf("%d user agents: want the top %d and one %q bar, got %d bars", len(w.agents), report.MaxAgents, report.OtherAgents, len(agents))
		}
		// The bars are the most common agents.
		var counts []int
		for _, v := range w.agents {
			counts = append(counts, v)
		}
		slices.Sort(counts)
		slices.Reverse(counts)
		for label, v := range agents {
			if label != report.OtherAgents && v < counts[report.MaxAgents-1] {
				t.Errorf("user agent %q (%d) has a bar though it is not among the %d most common", label, v, report.MaxAgents)
			}
		}
	} else if !equalMaps(agents, w.agents) {
		t.Errorf("user agents chart %v, JSON lines %v", agents, w.agents)
	}

	if got := bars(t, secs[report.SectionProtocols], "bar"); !equalMaps(got, w.protocols) {
		t.Errorf("protocols chart %v, JSON lines %v", got, w.protocols)
	}
	if got := bars(t, secs[report.SectionTransport], "bar"); !equalMaps(got, w.transports) || len(got) == 0 && w.reachable > 0 {
		t.Errorf("transports chart %v, JSON lines %v", got, w.transports)
	}
	if got := bars(t, secs[report.SectionServices], "bar"); !equalMaps(got, w.services) {
		t.Errorf("services chart %v, JSON lines %v", got, w.services)
	}

	// Start heights: lag below the highest, binned by LagEdges.
	var tip int64
	for _, h := range w.heights {
		tip = max(tip, h)
	}
	wantLag := make([]int, len(report.LagEdges)+1)
	for _, h := range w.heights {
		i := 0
		for i < len(report.LagEdges) && tip-h > report.LagEdges[i] {
			i++
		}
		wantLag[i]++
	}
	if got := columns(t, secs[report.SectionHeights]); !slices.Equal(got, wantLag) {
		t.Errorf("heights chart %v, JSON lines %v", got, wantLag)
	}

	wantLat := make([]int, len(report.LatencyEdges)+1)
	for _, ms := range w.handshakes {
		i := 0
		for i < len(report.LatencyEdges) && ms >= report.LatencyEdges[i] {
			i++
		}
		wantLat[i]++
	}
	if got := columns(t, secs[report.SectionHandshake]); !slices.Equal(got, wantLat) {
		t.Errorf("handshake chart %v, JSON lines %v", got, wantLat)
	}

	// The tiles.
	tiles := map[string]int{}
	for _, d := range root.all("div") {
		if id, ok := strings.CutPrefix(d.Attr["id"], "tile-"); ok {
			for _, v := range d.Children {
				if v.Attr["class"] == "value" {
					n, err := strconv.Atoi(strings.ReplaceAll(v.Attr["data-value"], ",", ""))
					if err != nil {
						t.Errorf("tile %s: %v", id, err)
					}
					tiles[id] = n
				}
			}
		}
	}
	wantTiles := map[string]int{
		"tried": w.tried, "reachable": w.reachable, "failed": w.tried - w.reachable,
		"not_dialled": w.notDialled, "agents": len(w.agents),
	}
	if w.summary != nil {
		wantTiles["discovered"] = int(w.summary["discovered"].(float64))
		if tried := int(w.summary["tried"].(float64)); tried != w.tried {
			t.Errorf("summary line says %d tried, node lines %d", tried, w.tried)
		}
	}
	for k, v := range wantTiles {
		if tiles[k] != v {
			t.Errorf("tile %s = %d, want %d", k, tiles[k], v)
		}
	}
}

// columns returns the data-values of a histogram's columns, in order.
func columns(t *testing.T, sec *node) []int {
	t.Helper()
	var out []int
	for _, g := range sec.all("g") {
		if g.Attr["class"] == "col" {
			v, err := strconv.Atoi(g.Attr["data-value"])
			if err != nil {
				t.Errorf("column %q: %v", g.Attr["data-label"], err)
			}
			out = append(out, v)
		}
	}
	return out
}

func equalMaps(a, b map[string]int) bool {
	nz := func(m map[string]int) map[string]int {
		out := map[string]int{}
		for k, v := range m {
			if v != 0 {
				out[k] = v
			}
		}
		return out
	}
	a, b = nz(a), nz(b)
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestSimulatedCrawlReport crawls a simulated network of a few hundred
// nodes, writes the report as the crawl goes (as a sink beside the JSON
// lines), and checks it structurally: well formed, self-contained, one SVG
// chart per section, and every number equal to what the JSON lines say. A
// report rebuilt from the JSON lines alone must be the same page. With
// BTCPIPE_REPORT_OUT set, it also writes the page (and the JSON lines
// beside it) there, for `make report-screenshot`.
func TestSimulatedCrawlReport(t *testing.T) {
	var lines bytes.Buffer
	rep := report.New("regtest")
	const good = 240
	sum := runSimCrawl(t, good, 42, crawler.NewJSONLines(&lines), rep)
	if sum.ByOutcome[crawler.Reachable] < good/2 {
		t.Fatalf("only %d reachable nodes in the simulated crawl: %+v", sum.ByOutcome[crawler.Reachable], sum)
	}
	var page bytes.Buffer
	if err := rep.WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	if out := os.Getenv("BTCPIPE_REPORT_OUT"); out != "" {
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(out, page.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(strings.TrimSuffix(out, filepath.Ext(out))+".jsonl", lines.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", out, page.Len())
	}
	root := parse(t, page.Bytes())
	checkSelfContained(t, root, page.Bytes())
	w := fromLines(t, lines.Bytes())
	if w.records != rep.Records() || w.records != sum.Records {
		t.Errorf("%d node lines, report counted %d, summary %d", w.records, rep.Records(), sum.Records)
	}
	// The simulated crawl has something in every chart.
	for _, o := range []string{"reachable", "refused", "timeout", "reset", "handshake_failed",
		"closed_after_verack", "self", "version_too_old", "not_dialled"} {
		if w.outcome[o] == 0 {
			t.Errorf("no %s node in the simulated crawl", o)
		}
	}
	for _, n := range []string{"ipv4", "ipv6", "torv3", "i2p", "cjdns"} {
		if len(w.network[n]) == 0 {
			t.Errorf("no %s address in the simulated crawl", n)
		}
	}
	checkNumbers(t, root, w)
	if title := root.all("title")[0].text(); title != "btcpipe crawl of regtest" {
		t.Errorf("title %q", title)
	}

	// The same page from the JSON lines alone.
	again, err := report.Read(bytes.NewReader(lines.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	var page2 bytes.Buffer
	if err := again.WriteHTML(&page2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(page.Bytes(), page2.Bytes()) {
		t.Error("the report rebuilt from the JSON lines differs from the one written during the crawl")
	}
}

// TestReportEscapesPeerText: user agents come from peers; markup in one
// must come out as text.
func TestReportEscapesPeerText(t *testing.T) {
	rep := report.New("mainnet")
	evil := []string{
		`<script>alert(1)</script>`, `"/><svg onload=alert(1)>`, `/a&b/`, `</title><img src=x>`,
		"/Satoshi:27.0.0/\u202e", strings.Repeat("/long:1.0/", 30),
	}
	for i, ua := range evil {
		rep.Record(&crawler.Record{Type: "node", Addr: fmt.Sprintf("1.2.3.%d:8333", i), Network: "ipv4",
			Outcome: crawler.Reachable, Time: time.Unix(1_700_000_000, 0),
			Handshake: &crawler.Handshake{Protocol: 70016, UserAgent: ua, StartHeight: 800_000, HandshakeMs: 12,
				Services: []string{"NODE_NETWORK"}}})
	}
	var page bytes.Buffer
	if err := rep.WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	root := parse(t, page.Bytes())
	checkSelfContained(t, root, page.Bytes())
	got := bars(t, root, "bar")
	for _, ua := range evil {
		if got[ua] != 1 {
			t.Errorf("user agent %q: bar %d, want 1 (data-label must carry it intact)", ua, got[ua])
		}
	}
}

// TestEmptyReport: a crawl that found nothing still gives a valid page with
// every section.
func TestEmptyReport(t *testing.T) {
	rep := report.New("signet")
	rep.Summary(&crawler.Summary{Type: "summary", Network: "signet", Interrupted: true,
		Started: time.Unix(1_700_000_000, 0), Finished: time.Unix(1_700_000_003, 0), Seconds: 3})
	var page bytes.Buffer
	if err := rep.WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	root := parse(t, page.Bytes())
	checkSelfContained(t, root, page.Bytes())
	sections(t, root)
	if !strings.Contains(page.String(), "interrupted") {
		t.Error("an interrupted crawl's report does not say so")
	}
}

// TestManyAgents: past MaxAgents, the rest share one bar whose value is
// their sum.
func TestManyAgents(t *testing.T) {
	rep := report.New("mainnet")
	const distinct = 40
	total := 0
	for i := range distinct {
		for range i + 1 {
			total++
			rep.Record(&crawler.Record{Type: "node", Addr: fmt.Sprintf("10.0.%d.%d:8333", i, total%250), Network: "ipv4",
				Outcome: crawler.Reachable, Handshake: &crawler.Handshake{UserAgent: fmt.Sprintf("/agent:%d/", i), Protocol: 70016}})
		}
	}
	var page bytes.Buffer
	if err := rep.WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	root := parse(t, page.Bytes())
	got := bars(t, sections(t, root)[report.SectionAgents], "bar")
	if len(got) != report.MaxAgents+1 {
		t.Fatalf("%d bars, want %d", len(got), report.MaxAgents+1)
	}
	// Agent i has i+1 nodes: the top ones are the last MaxAgents; the
	// rest have 1 … rest nodes.
	for i := distinct - report.MaxAgents; i < distinct; i++ {
		if v := got[fmt.Sprintf("/agent:%d/", i)]; v != i+1 {
			t.Errorf("/agent:%d/ = %d, want %d", i, v, i+1)
		}
	}
	rest := distinct - report.MaxAgents
	if want := rest * (rest + 1) / 2; got[report.OtherAgents] != want {
		t.Errorf("%s = %d, want %d", report.OtherAgents, got[report.OtherAgents], want)
	}
}

func TestReadRejectsGarbage(t *testing.T) {
	_, err := report.Read(strings.NewReader(`{"type":"node","addr":"1.2.3.4:8333"}` + "\nnot json\n"))
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("Read = %v, want an error naming line 2", err)
	}
}
