package dashboard

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/btcpipe/btcpipe/crawler"
	"github.com/btcpipe/btcpipe/internal/textfmt"
	"github.com/btcpipe/btcpipe/monitor"
	"github.com/btcpipe/btcpipe/wire"
)

// MaxAgents is how many user agents get a bar of their own on the
// overview; the rest share one.
const MaxAgents = 12

// SummaryMaxAge bounds how long the overview's summary of the newest
// snapshot is reused (re-checks change scores between snapshots).
const SummaryMaxAge = 30 * time.Second

// summary is what the overview shows of one snapshot, computed from its
// nodes in one pass.
type summary struct {
	id         int64
	built      time.Time
	info       monitor.SnapshotInfo
	records    int
	reachable  int
	good       int
	byNetwork  map[string]int // reachable
	allNetwork map[string]int // every record
	outcomes   map[string]int
	protocols  map[string]int
	agents     map[string]int
	services   map[uint64]int
	transports map[string]int
	heights    []int32
	connect    []float64
}

// latestSummary returns the summary of the newest complete snapshot
// (monitor.ErrNotFound when there is none).
func (d *Dashboard) latestSummary(ctx context.Context) (*summary, error) {
	id, err := d.store.LatestID(ctx)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	s := d.summary
	d.mu.Unlock()
	if s != nil && s.id == id && d.now().Sub(s.built) < SummaryMaxAge {
		return s, nil
	}
	s, err = d.summarize(ctx, id)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.summary = s
	d.mu.Unlock()
	return s, nil
}

func (d *Dashboard) summarize(ctx context.Context, id int64) (*summary, error) {
	info, err := d.store.SnapshotByID(ctx, id)
	if err != nil {
		return nil, err
	}
	s := &summary{id: id, built: d.now(), info: info, byNetwork: map[string]int{}, allNetwork: map[string]int{}, outcomes: map[string]int{},
		protocols: map[string]int{}, agents: map[string]int{}, services: map[uint64]int{}, transports: map[string]int{}}
	_, err = d.store.EachNode(ctx, id, monitor.NodeQuery{Limit: -1}, func(e *monitor.NodeEntry) error {
		s.records++
		s.allNetwork[e.Network]++
		s.outcomes[e.Outcome]++
		if e.Outcome != string(crawler.Reachable) {
			return nil
		}
		s.reachable++
		if e.Good {
			s.good++
		}
		s.byNetwork[e.Network]++
		s.protocols[strconv.Itoa(int(e.Protocol))]++
		s.agents[e.UserAgent]++
		s.services[e.Services]++
		s.transports[e.Transport]++
		s.heights = append(s.heights, e.StartHeight)
		if e.ConnectMs > 0 {
			s.connect = append(s.connect, e.ConnectMs)
		}
		return nil
	})
	return s, err
}

// tile is one number at the top of a page.
type tile struct {
	ID, Label, Value, Note string
}

// rangeLink is one choice of time range.
type rangeLink struct {
	Label, Href string
	Current     bool
}

// Ranges of the overview's charts over time and of the node page.
var ranges = []struct {
	key string
	d   time.Duration
}{{"24h", 24 * time.Hour}, {"7d", 7 * 24 * time.Hour}, {"30d", 30 * 24 * time.Hour}, {"90d", 90 * 24 * time.Hour}}

func parseRange(r *http.Request, def string) (string, time.Duration, error) {
	k := r.URL.Query().Get("range")
	if k == "" {
		k = def
	}
	for _, rg := range ranges {
		if rg.key == k {
			return k, rg.d, nil
		}
	}
	return "", 0, bad("range=%q: want one of 24h, 7d, 30d, 90d", textfmt.Shorten(k, 20))
}

func rangeLinks(path, current string, keep url.Values) []rangeLink {
	var out []rangeLink
	for _, rg := range ranges {
		v := url.Values{}
		for k, vs := range keep {
			v[k] = vs
		}
		v.Set("range", rg.key)
		out = append(out, rangeLink{Label: rg.key, Href: path + "?" + v.Encode(), Current: rg.key == current})
	}
	return out
}

// progressView is the crawl-in-flight panel.
type progressView struct {
	monitor.Progress
	Percent   float64 // of the attempts known so far that are done
	State     string
	StartedAt string
	NextAt    string
}

func newProgressView(p monitor.Progress) progressView {
	v := progressView{Progress: p, State: "idle", StartedAt: formatTimePtr(p.Started), NextAt: formatTimePtr(p.NextCrawl)}
	if p.Running {
		v.State = "running"
		if all := p.Done + p.InFlight + p.Queued; all > 0 {
			v.Percent = math.Round(float64(p.Done)/float64(all)*1000) / 10
		}
	}
	return v
}

type overviewPage struct {
	base
	Latest    *monitor.SnapshotInfo
	Duration  string
	Tiles     []tile
	Progress  progressView
	Range     string
	Ranges    []rangeLink
	OverTime  *lineChart
	Transport *lineChart
	Networks  *hbarChart
	Outcomes  *hbarChart
	Protocols *hbarChart
	Agents    *hbarChart
	Services  *hbarChart
	Heights   *hbarChart
	Recent    []monitor.SnapshotInfo
}

func (d *Dashboard) overview(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	key, span, err := parseRange(r, "7d")
	if err != nil {
		d.failErr(w, r, err)
		return
	}
	p := overviewPage{base: d.base("Overview", "overview"), Progress: newProgressView(d.currentProgress()), Range: key,
		Ranges: rangeLinks(PathOverview, key, nil)}
	s, err := d.latestSummary(ctx)
	if err != nil && !errors.Is(err, monitor.ErrNotFound) {
		d.failErr(w, r, err)
		return
	}
	recent, err := d.store.Snapshots(ctx, 8, 0)
	if err != nil {
		d.failErr(w, r, err)
		return
	}
	p.Recent = recent.Snapshots
	if s != nil {
		p.Latest = &s.info
		if s.info.Finished != nil {
			p.Duration = s.info.Finished.Sub(s.info.Started).Round(time.Second).String()
		}
		p.Tiles = overviewTiles(s)
		p.Networks = networkBars(s)
		p.Outcomes = outcomeBars(s.outcomes, s.records, halfWidth)
		p.Protocols = countBars("Protocol versions", s.protocols, s.reachable, 10, halfWidth, func(k string) string { return "" })
		p.Agents = countBars("User agents", s.agents, s.reachable, MaxAgents, fullWidth, func(k string) string {
			return PathNodes + "?" + url.Values{"q": {k}, "outcome": {"reachable"}}.Encode()
		})
		p.Services = serviceBars(s)
		p.Heights = heightBars(s)
	}
	st, err := d.store.Stats(ctx, monitor.StatsQuery{From: d.now().Add(-span), Dims: []string{monitor.DimNetwork, monitor.DimTransport}, Points: 400})
	if err != nil {
		d.failErr(w, r, err)
		return
	}
	p.OverTime, p.Transport = overTime(st)
	d.render(w, r, http.StatusOK, "overview", p)
}

func overviewTiles(s *summary) []tile {
	t := []tile{
		{ID: "reachable", Label: "Reachable nodes", Value: textfmt.Group(s.reachable), Note: fmt.Sprintf("of %s addresses known", textfmt.Group(s.records))},
		{ID: "good", Label: "Good for seeding", Value: textfmt.Group(s.good), Note: "as the DNS seeders judge"},
	}
	for _, n := range []string{"ipv4", "ipv6", "torv3", "i2p", "cjdns"} {
		t = append(t, tile{ID: "net-" + n, Label: networkLabel(n), Value: textfmt.Group(s.byNetwork[n]), Note: textfmt.Percent(s.byNetwork[n], s.reachable) + " of reachable"})
	}
	med := "–"
	if len(s.connect) > 0 {
		c := slices.Clone(s.connect)
		slices.Sort(c)
		med = formatMs(c[len(c)/2])
	}
	t = append(t, tile{ID: "latency", Label: "Median connect", Value: med, Note: "TCP connect, reachable nodes"})
	return t
}

// sortedCounts returns the keys of m, largest count first, then by key.
func sortedCounts[K cmp.Ordered](m map[K]int) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b K) int { return cmp.Or(cmp.Compare(m[b], m[a]), cmp.Compare(a, b)) })
	return keys
}

// countBars is a bar per key (the top ones, the rest as "other").
func countBars(title string, m map[string]int, total, top int, width float64, href func(string) string) *hbarChart {
	var items []item
	other := 0
	for i, k := range sortedCounts(m) {
		if i >= top {
			other += m[k]
			continue
		}
		items = append(items, item{Label: k, Value: m[k], Href: href(k)})
	}
	if other > 0 {
		items = append(items, item{Label: fmt.Sprintf("%d others", len(m)-top), Value: other, Color: "#7d8794"})
	}
	return newHBar(title, items, total, width, "no reachable node")
}

func networkBars(s *summary) *hbarChart {
	var items []item
	keys := make([]string, 0, len(s.allNetwork))
	for k := range s.allNetwork {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return cmp.Or(cmp.Compare(networkRank(keys[i]), networkRank(keys[j])), cmp.Compare(keys[i], keys[j])) < 0
	})
	for _, k := range keys {
		items = append(items, item{Label: networkLabel(k), Value: s.byNetwork[k], Color: colorOf(networkColors, k),
			Href: PathNodes + "?" + url.Values{"network": {k}, "outcome": {"reachable"}}.Encode()})
	}
	return newHBar("Reachable nodes by network", items, s.reachable, halfWidth, "no node")
}

func outcomeBars(m map[string]int, total int, width float64) *hbarChart {
	var items []item
	for _, o := range crawler.Outcomes {
		if n := m[string(o)]; n > 0 {
			items = append(items, item{Label: strings.ReplaceAll(string(o), "_", " "), Value: n, Color: colorOf(outcomeColors, string(o)),
				Href: PathNodes + "?" + url.Values{"outcome": {string(o)}}.Encode()})
		}
	}
	return newHBar("Every address by outcome", items, total, width, "no node")
}

// serviceNames renders service bits short: NETWORK · WITNESS.
func serviceNames(v uint64) string {
	if v == 0 {
		return "none"
	}
	return strings.ReplaceAll(strings.ReplaceAll(wire.ServiceFlag(v).String(), "NODE_", ""), "|", " · ")
}

func serviceBars(s *summary) *hbarChart {
	var items []item
	other := 0
	for i, k := range sortedCounts(s.services) {
		if i >= 8 {
			other += s.services[k]
			continue
		}
		items = append(items, item{Label: serviceNames(k), Value: s.services[k]})
	}
	if other > 0 {
		items = append(items, item{Label: "other combinations", Value: other, Color: "#7d8794"})
	}
	return newHBar("Services", items, s.reachable, fullWidth, "no reachable node")
}

// heightLabels are the bins of how far a node's start height is below the
// tip: the highest height that at least 1% of the reachable nodes (and at
// least one) report, so that one node claiming a huge height moves nothing.
var heightLabels = []string{"at the tip", "1 behind", "2–5", "6–10", "11–100", "101–1,000", "1,001–10,000", "> 10,000"}
var heightEdges = []int32{0, 1, 5, 10, 100, 1_000, 10_000}

func tipOf(heights []int32) int32 {
	if len(heights) == 0 {
		return 0
	}
	h := slices.Clone(heights)
	slices.Sort(h)
	slices.Reverse(h)
	return h[min(len(h)/100, len(h)-1)]
}

func heightBars(s *summary) *hbarChart {
	tip := tipOf(s.heights)
	counts := make([]int, len(heightLabels))
	for _, h := range s.heights {
		lag := max(tip-h, 0)
		i := len(heightEdges)
		for j, e := range heightEdges {
			if lag <= e {
				i = j
				break
			}
		}
		counts[i]++
	}
	var items []item
	for i, n := range counts {
		items = append(items, item{Label: heightLabels[i], Value: n, Color: "#3f74b8"})
	}
	c := newHBar(fmt.Sprintf("Start heights (tip %s)", textfmt.Group(tip)), items, len(s.heights), halfWidth, "no reachable node")
	return c
}

// overTime draws the reachable nodes over time by network and by transport.
func overTime(st monitor.Stats) (*lineChart, *lineChart) {
	times := make([]time.Time, len(st.Points))
	total := make([]float64, len(st.Points))
	nets, transports := map[string]bool{}, map[string]bool{}
	for i, p := range st.Points {
		times[i], total[i] = p.Time, float64(p.Reachable)
		for k := range p.Counts[monitor.DimNetwork] {
			nets[k] = true
		}
		for k := range p.Counts[monitor.DimTransport] {
			transports[k] = true
		}
	}
	series := func(dim string, keys map[string]bool, colors map[string]string, label func(string) string) []seriesData {
		ks := make([]string, 0, len(keys))
		for k := range keys {
			ks = append(ks, k)
		}
		sort.Slice(ks, func(i, j int) bool {
			return cmp.Or(cmp.Compare(networkRank(ks[i]), networkRank(ks[j])), cmp.Compare(ks[i], ks[j])) < 0
		})
		out := []seriesData{{Key: "all", Label: "all", Color: networkColors["all"], Values: total}}
		for _, k := range ks {
			v := make([]float64, len(st.Points))
			for i, p := range st.Points {
				v[i] = float64(p.Counts[dim][k])
			}
			out = append(out, seriesData{Key: k, Label: label(k), Color: colors[k], Values: v})
		}
		return out
	}
	byNet := newLineChart("Reachable nodes over time, by network", times, series(monitor.DimNetwork, nets, networkColors, networkLabel), "", "no complete snapshot in this range")
	tcolors := map[string]string{"v1": "#2f6db5", "v2": "#1f8a4c"}
	byTransport := newLineChart("Reachable nodes over time, by transport", times, series(monitor.DimTransport, transports, tcolors, func(k string) string {
		switch k {
		case "v1":
			return "v1 (plaintext)"
		case "v2":
			return "v2 (BIP324)"
		}
		return k
	}), "", "no complete snapshot in this range")
	for i := range byTransport.Series {
		if byTransport.Series[i].Color == "" {
			byTransport.Series[i].Color = "#5f6b7a"
		}
	}
	return byNet, byTransport
}

// nodes pages ---------------------------------------------------------------

// column is one header of the node table.
type column struct {
	Key, Label string
	Href       string // sort by it
	Sort       string // aria-sort: ascending, descending or none
	Num        bool
}

type option struct {
	Value, Label string
	Selected     bool
}

type pageLink struct {
	Label, Href string
	Rel         string
}

type nodesPage struct {
	base
	Snapshot                  monitor.SnapshotInfo
	Latest                    bool
	Action                    string
	Q, Network, Outcome       string
	SortKey, Order            string
	Networks, Outcomes, Sorts []option
	Columns                   []column
	Total                     int
	Page, Pages               int
	First, Last               int // rows shown, 1-based
	Nodes                     []monitor.NodeEntry
	Prev, Next                string
	FirstPage, LastPage       string
	Exports                   []pageLink
	Counts                    *hbarChart // snapshot page: outcomes
	NetCounts                 *hbarChart
	Duration                  string
}

// sortColumns are the node table's columns, in order.
var sortColumns = []struct {
	key, label       string
	num, desc, noCol bool // numeric; first click sorts descending; in the sort menu only
}{
	{"addr", "Address", false, false, false}, {"network", "Network", false, false, false}, {"outcome", "Outcome", false, false, false},
	{"user_agent", "User agent", false, false, false}, {"protocol", "Protocol", true, true, true}, {"height", "Height", true, true, false},
	{"latency", "Latency", true, false, false}, {"uptime", "Uptime", true, true, false}, {"last_seen", "Last seen", false, true, false},
}

func (d *Dashboard) latestNodes(w http.ResponseWriter, r *http.Request) {
	id, err := d.store.LatestID(r.Context())
	if err != nil {
		d.failErr(w, r, err)
		return
	}
	d.nodeList(w, r, id, true)
}

func (d *Dashboard) snapshot(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		d.failErr(w, r, bad("snapshot %q: want a positive integer", textfmt.Shorten(r.PathValue("id"), 30)))
		return
	}
	d.nodeList(w, r, id, false)
}

func intParam(r *http.Request, name string, def, lo, hi int) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		return 0, bad("%s=%q: want a whole number from %d to %d", name, textfmt.Shorten(s, 20), lo, hi)
	}
	return v, nil
}

func (d *Dashboard) nodeList(w http.ResponseWriter, r *http.Request, id int64, latest bool) {
	ctx := r.Context()
	qv := r.URL.Query()
	q := monitor.NodeQuery{Q: strings.TrimSpace(qv.Get("q")), Network: qv.Get("network"), Outcome: qv.Get("outcome"), Sort: qv.Get("sort"), Limit: PageSize}
	if len(q.Q) > MaxQuery {
		d.failErr(w, r, bad("the search is %d bytes long: at most %d", len(q.Q), MaxQuery))
		return
	}
	if _, ok := monitor.SortKeys[q.Sort]; q.Sort != "" && !ok {
		d.failErr(w, r, bad("sort=%q: not a column to sort by", textfmt.Shorten(q.Sort, 30)))
		return
	}
	if q.Sort == "" {
		q.Sort = "addr"
	}
	order := qv.Get("order")
	switch order {
	case "", "asc":
		order = "asc"
	case "desc":
		q.Desc = true
	default:
		d.failErr(w, r, bad("order=%q: want asc or desc", textfmt.Shorten(order, 20)))
		return
	}
	page, err := intParam(r, "page", 1, 1, 1<<20)
	if err != nil {
		d.failErr(w, r, err)
		return
	}
	q.Offset = (page - 1) * PageSize
	info, err := d.store.SnapshotByID(ctx, id)
	if err != nil {
		d.failErr(w, r, err)
		return
	}
	action := fmt.Sprintf("%s/%d", PathSnapshots, id)
	title := fmt.Sprintf("Snapshot %d", id)
	nav := "snapshots"
	if latest {
		action, title, nav = PathNodes, "Nodes", "nodes"
	}
	p := nodesPage{base: d.base(title, nav), Snapshot: info, Latest: latest, Action: action, Q: q.Q, Network: q.Network,
		Outcome: q.Outcome, SortKey: q.Sort, Order: order, Page: page}
	if info.Finished != nil {
		p.Duration = info.Finished.Sub(info.Started).Round(time.Second).String()
	}
	if info.Status == monitor.StatusComplete {
		p.Total, err = d.store.EachNode(ctx, id, q, func(e *monitor.NodeEntry) error {
			p.Nodes = append(p.Nodes, *e)
			return nil
		})
		if err != nil {
			d.failErr(w, r, err)
			return
		}
		if !latest {
			st, err := d.store.Stats(ctx, monitor.StatsQuery{From: info.Started, To: info.Started, Dims: []string{monitor.DimOutcome, monitor.DimAllNetwork, monitor.DimNetwork}})
			if err != nil {
				d.failErr(w, r, err)
				return
			}
			for _, pt := range st.Points {
				if pt.Snapshot != id {
					continue
				}
				p.Counts = outcomeBars(pt.Counts[monitor.DimOutcome], pt.Records, halfWidth)
				for i := range p.Counts.Bars {
					p.Counts.Bars[i].Href = "" // the links filter the latest snapshot
				}
				s := &summary{allNetwork: pt.Counts[monitor.DimAllNetwork], byNetwork: pt.Counts[monitor.DimNetwork], reachable: pt.Reachable}
				p.NetCounts = networkBars(s)
				for i := range p.NetCounts.Bars {
					p.NetCounts.Bars[i].Href = ""
				}
			}
		}
	}
	p.Pages = max(1, (p.Total+PageSize-1)/PageSize)
	if len(p.Nodes) > 0 {
		p.First, p.Last = q.Offset+1, q.Offset+len(p.Nodes)
	}
	link := func(change map[string]string) string {
		v := url.Values{}
		set := func(k, val, def string) {
			if val != "" && val != def {
				v.Set(k, val)
			}
		}
		cur := map[string]string{"q": q.Q, "network": q.Network, "outcome": q.Outcome, "sort": q.Sort, "order": order, "page": strconv.Itoa(page)}
		for k, val := range change {
			cur[k] = val
		}
		set("q", cur["q"], "")
		set("network", cur["network"], "")
		set("outcome", cur["outcome"], "")
		set("sort", cur["sort"], "addr")
		set("order", cur["order"], "asc")
		set("page", cur["page"], "1")
		if len(v) == 0 {
			return action
		}
		return action + "?" + v.Encode()
	}
	if page > 1 {
		p.Prev, p.FirstPage = link(map[string]string{"page": strconv.Itoa(page - 1)}), link(map[string]string{"page": "1"})
	}
	if page < p.Pages {
		p.Next, p.LastPage = link(map[string]string{"page": strconv.Itoa(page + 1)}), link(map[string]string{"page": strconv.Itoa(p.Pages)})
	}
	for _, c := range sortColumns {
		if c.noCol {
			continue
		}
		col := column{Key: c.key, Label: c.label, Num: c.num, Sort: "none"}
		next := "asc"
		if c.desc {
			next = "desc"
		}
		if q.Sort == c.key {
			col.Sort = map[bool]string{false: "ascending", true: "descending"}[q.Desc]
			next = map[bool]string{false: "desc", true: "asc"}[q.Desc]
		}
		col.Href = link(map[string]string{"sort": c.key, "order": next, "page": "1"})
		p.Columns = append(p.Columns, col)
	}
	p.Networks = []option{{Value: "", Label: "any network"}}
	for _, n := range []string{"ipv4", "ipv6", "torv3", "i2p", "cjdns"} {
		p.Networks = append(p.Networks, option{Value: n, Label: networkLabel(n), Selected: n == q.Network})
	}
	p.Outcomes = []option{{Value: "", Label: "any outcome"}}
	for _, o := range crawler.Outcomes {
		p.Outcomes = append(p.Outcomes, option{Value: string(o), Label: strings.ReplaceAll(string(o), "_", " "), Selected: string(o) == q.Outcome})
	}
	for _, c := range sortColumns {
		p.Sorts = append(p.Sorts, option{Value: c.key, Label: c.label, Selected: c.key == q.Sort})
	}
	if info.Status == monitor.StatusComplete {
		ev := url.Values{}
		for k, val := range map[string]string{"q": q.Q, "network": q.Network, "outcome": q.Outcome} {
			if val != "" {
				ev.Set(k, val)
			}
		}
		if q.Sort != "addr" {
			ev.Set("sort", q.Sort)
		}
		if q.Desc {
			ev.Set("order", "desc")
		}
		for _, e := range []struct{ format, label string }{{"csv", "CSV"}, {"jsonl", "JSON lines"}, {"seeds", "Seeds dump (makeseeds.py)"}} {
			v := url.Values{"format": {e.format}}
			for k, vs := range ev {
				v[k] = vs
			}
			p.Exports = append(p.Exports, pageLink{Label: e.label, Href: fmt.Sprintf("%s/%d/export?%s", monitor.PathSnapshots, id, v.Encode())})
		}
	}
	d.render(w, r, http.StatusOK, "nodes", p)
}

// node page -----------------------------------------------------------------

type nodePage struct {
	base
	H        monitor.NodeHistory
	Tiles    []tile
	Uptimes  []uptimeBar
	Range    string
	Ranges   []rangeLink
	Timeline *timelineChart
	Latency  *lineChart
	Runs     []monitor.Run // newest first
	Changes  []monitor.Change
	// Of a long history the tables show the newest HistoryRows, with a
	// link to all of them.
	RunsTotal, ChangesTotal int
	AllHref                 string
}

// HistoryRows is how many runs and changes the node page lists before
// "show all".
const HistoryRows = 25

type uptimeBar struct {
	Label, Value string
	W            float64
	Color        string
}

func (d *Dashboard) node(w http.ResponseWriter, r *http.Request) {
	addr := r.PathValue("addr")
	if len(addr) > 128 || !strings.Contains(addr, ":") {
		d.failErr(w, r, bad("node %q: want host:port, like 192.0.2.1:8333 or [2001:db8::1]:8333", textfmt.Shorten(addr, 64)))
		return
	}
	key, span, err := parseRange(r, "30d")
	if err != nil {
		d.failErr(w, r, err)
		return
	}
	now := d.now()
	h, err := d.store.Node(r.Context(), addr, now.Add(-span))
	if err != nil {
		d.failErr(w, r, err)
		return
	}
	p := nodePage{base: d.base(addr, "nodes"), H: h, Range: key, Ranges: rangeLinks(nodeURL(addr), key, nil)}
	for _, u := range []struct {
		label string
		v     float64
	}{{"2 hours", h.Uptime.H2}, {"8 hours", h.Uptime.H8}, {"1 day", h.Uptime.D1}, {"7 days", h.Uptime.D7}, {"30 days", h.Uptime.D30}} {
		c := "#1f8a4c"
		switch {
		case u.v < 50:
			c = "#c8374a"
		case u.v < 90:
			c = "#b7791f"
		}
		p.Uptimes = append(p.Uptimes, uptimeBar{Label: u.label, Value: fmt.Sprintf("%.1f%%", u.v), W: round1(math.Max(u.v, 0) / 100 * 200), Color: c})
	}
	p.Tiles = []tile{
		{ID: "outcome", Label: "Last outcome", Value: strings.ReplaceAll(h.Outcome, "_", " "), Note: "at " + formatTimePtr(h.LastTry)},
		{ID: "seen", Label: "Reachable", Value: fmt.Sprintf("%s of %s", textfmt.Group(h.Successes), textfmt.Group(h.Tries)), Note: "observations"},
		{ID: "first", Label: "First seen", Value: shortTime(h.FirstSeen), Note: formatTimePtr(h.FirstSeen)},
		{ID: "last", Label: "Last reachable", Value: shortTime(h.LastSeen), Note: formatTimePtr(h.LastSeen)},
	}
	p.Timeline = newTimeline(joinRuns(h.Runs), now.Add(-span), now)
	var times []time.Time
	var lat []float64
	for i, run := range h.Runs {
		if run.Outcome != string(crawler.Reachable) {
			continue
		}
		if i > 0 && h.Runs[i-1].Outcome != string(crawler.Reachable) && len(times) > 0 {
			times, lat = append(times, run.From), append(lat, math.NaN()) // it was away: break the line
		}
		times = append(times, run.From, run.To)
		lat = append(lat, run.ConnectMs, run.ConnectMs)
	}
	p.Latency = newLineChart("Connect latency over time", times, []seriesData{{Key: "connect", Label: "connect", Color: accent, Values: lat}}, " ms", "never reachable in this range")
	p.Runs = slices.Clone(h.Runs)
	slices.Reverse(p.Runs)
	p.Changes = slices.Clone(h.Changes)
	slices.Reverse(p.Changes)
	p.RunsTotal, p.ChangesTotal = len(p.Runs), len(p.Changes)
	if r.URL.Query().Get("all") == "" {
		p.Runs, p.Changes = p.Runs[:min(len(p.Runs), HistoryRows)], p.Changes[:min(len(p.Changes), HistoryRows)]
		p.AllHref = nodeURL(addr) + "?" + url.Values{"range": {key}, "all": {"1"}}.Encode()
	}
	d.render(w, r, http.StatusOK, "node", p)
}

// shortTime renders t as a date, or "never".
func shortTime(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return t.UTC().Format("Jan 2, 15:04")
}

// snapshots page ------------------------------------------------------------

type snapshotsPage struct {
	base
	List        monitor.SnapshotList
	Page, Pages int
	Prev, Next  string
}

func (d *Dashboard) snapshots(w http.ResponseWriter, r *http.Request) {
	page, err := intParam(r, "page", 1, 1, 1<<20)
	if err != nil {
		d.failErr(w, r, err)
		return
	}
	l, err := d.store.Snapshots(r.Context(), PageSize, (page-1)*PageSize)
	if err != nil {
		d.failErr(w, r, err)
		return
	}
	p := snapshotsPage{base: d.base("Snapshots", "snapshots"), List: l, Page: page, Pages: max(1, (l.Total+PageSize-1)/PageSize)}
	if page > 1 {
		p.Prev = fmt.Sprintf("%s?page=%d", PathSnapshots, page-1)
	}
	if page < p.Pages {
		p.Next = fmt.Sprintf("%s?page=%d", PathSnapshots, page+1)
	}
	d.render(w, r, http.StatusOK, "snapshots", p)
}

// joinRuns returns the runs for the timeline: a run ends at its last
// observation, so one that the next run follows directly (the next
// snapshot, or as soon as the snapshots' spacing says) is drawn up to the
// next one's start, without a gap that would say the node was away.
func joinRuns(runs []monitor.Run) []monitor.Run {
	var steps []time.Duration
	for _, r := range runs {
		if r.Snapshots > 1 {
			steps = append(steps, r.To.Sub(r.From)/time.Duration(r.Snapshots-1))
		}
	}
	var step time.Duration
	if len(steps) > 0 {
		slices.Sort(steps)
		step = steps[len(steps)/2]
	}
	out := slices.Clone(runs)
	for i := 0; i+1 < len(out); i++ {
		next := out[i+1]
		if next.FirstSnapshot == out[i].LastSnapshot+1 || step > 0 && next.From.Sub(out[i].To) <= step*3/2 {
			out[i].To = next.From
		}
	}
	return out
}
