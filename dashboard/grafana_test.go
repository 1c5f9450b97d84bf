package dashboard

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/btcpipe/btcpipe/metrics"
	"github.com/btcpipe/btcpipe/monitor"
)

// GrafanaDashboard is the Grafana dashboard of the repository.
const GrafanaDashboard = "../deploy/grafana/btcpipe.json"

var (
	stringRe   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	matchersRe = regexp.MustCompile(`\{[^{}]*\}`)
	rangeRe    = regexp.MustCompile(`\[[^\]]*\]`)
	groupingRe = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	identRe    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	keywords   = map[string]bool{"bool": true, "offset": true, "and": true, "or": true, "unless": true, "inf": true, "nan": true,
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true, "atan2": true}
)

// metricNames returns the metric names a PromQL expression selects: the
// identifiers left once strings, label matchers, ranges and grouping
// clauses are taken out, less function names (an identifier before "(")
// and keywords. Grafana's variables ($job, $__rate_interval) live only in
// matchers and ranges.
func metricNames(expr string) []string {
	s := stringRe.ReplaceAllString(expr, `""`)
	s = matchersRe.ReplaceAllString(s, " ")
	s = rangeRe.ReplaceAllString(s, " ")
	s = groupingRe.ReplaceAllString(s, " ")
	var out []string
	for _, loc := range identRe.FindAllStringIndex(s, -1) {
		name := s[loc[0]:loc[1]]
		if loc[0] > 0 && (s[loc[0]-1] >= '0' && s[loc[0]-1] <= '9' || s[loc[0]-1] == '.' || s[loc[0]-1] == '$') {
			continue // 1e9, 0.5, a variable
		}
		rest := strings.TrimLeft(s[loc[1]:], " \t\n")
		if strings.HasPrefix(rest, "(") || keywords[strings.ToLower(name)] {
			continue
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

func TestMetricNamesOfPromQL(t *testing.T) {
	for _, c := range []struct {
		expr string
		want []string
	}{
		{`sum by (network) (btcpipe_monitor_snapshot_nodes{job=~"$job", outcome="reachable"})`, []string{"btcpipe_monitor_snapshot_nodes"}},
		{`histogram_quantile(0.95, sum by (le, kind) (rate(a_seconds_bucket{x="{y}"}[$__rate_interval])))`, []string{"a_seconds_bucket"}},
		{`sum(rate(x_sum[1h])) / sum(rate(x_count[1h])) * 1e3`, []string{"x_sum", "x_count"}},
		{`a / on (instance) group_left (version) b offset 5m > bool 0`, []string{"a", "b"}},
		{`up{job="a or b"} unless down`, []string{"up", "down"}},
	} {
		if got := metricNames(c.expr); !slices.Equal(got, c.want) {
			t.Errorf("metricNames(%s) = %q, want %q", c.expr, got, c.want)
		}
	}
}

// recorder notes the name of every metric registered through it.
type recorder struct {
	prometheus.Registerer
	names map[string]bool
}

var fqNameRe = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r *recorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 16)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		if m := fqNameRe.FindStringSubmatch(d.String()); m != nil {
			r.names[m[1]] = true
		}
	}
	return r.Registerer.Register(c)
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// registeredMetrics returns every series name btcpipe monitor exposes:
// metrics.New's (the node, the crawler, the Go runtime and the process)
// and the monitor's, with _bucket, _sum and _count for histograms.
func registeredMetrics(t *testing.T) map[string]bool {
	t.Helper()
	m := metrics.New()
	rec := &recorder{Registerer: m.Registry, names: map[string]bool{}}
	monitor.NewMetrics(rec)
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for n := range rec.names {
		names[n] = true
	}
	for _, f := range fams {
		names[f.GetName()] = true
		if f.GetType() == dto.MetricType_HISTOGRAM || f.GetType() == dto.MetricType_SUMMARY {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				names[f.GetName()+suffix] = true
			}
		}
	}
	// The monitor's histograms with labels appear in Gather (their label
	// values are made at start); the others are plain names.
	if len(names) < 40 {
		t.Fatalf("only %d metrics registered: %v", len(names), names)
	}
	return names
}

// grafanaExprs walks the dashboard's panels (and rows' panels) and
// returns each target's PromQL by panel title, and the templating queries.
func grafanaExprs(t *testing.T) (map[string][]string, int) {
	t.Helper()
	b, err := os.ReadFile(GrafanaDashboard)
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Title   string                  `json:"title"`
		Type    string                  `json:"type"`
		Targets []struct{ Expr string } `json:"targets"`
		Panels  []json.RawMessage       `json:"panels"`
	}
	var d struct {
		Title      string            `json:"title"`
		UID        string            `json:"uid"`
		Panels     []json.RawMessage `json:"panels"`
		Templating struct {
			List []struct {
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", GrafanaDashboard, err)
	}
	if d.Title == "" || d.UID == "" {
		t.Errorf("%s: no title or uid", GrafanaDashboard)
	}
	out := map[string][]string{}
	panels := 0
	var walk func([]json.RawMessage)
	walk = func(list []json.RawMessage) {
		for _, raw := range list {
			var p panel
			if err := json.Unmarshal(raw, &p); err != nil {
				t.Fatal(err)
			}
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			panels++
			if len(p.Targets) == 0 {
				t.Errorf("panel %q queries nothing", p.Title)
			}
			for _, tg := range p.Targets {
				out[p.Title] = append(out[p.Title], tg.Expr)
			}
		}
	}
	walk(d.Panels)
	labelValues := regexp.MustCompile(`label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := json.Marshal(v.Query)
		for _, m := range labelValues.FindAllStringSubmatch(string(q), -1) {
			out["variable"] = append(out["variable"], m[1])
		}
	}
	return out, panels
}

// TestGrafanaQueriesExist checks that every metric the Grafana dashboard
// queries is one that btcpipe registers, and that the dashboard covers the
// node, the crawler and the monitor.
func TestGrafanaQueriesExist(t *testing.T) {
	known := registeredMetrics(t)
	exprs, panels := grafanaExprs(t)
	used := map[string]bool{}
	for title, list := range exprs {
		for _, e := range list {
			names := metricNames(e)
			if len(names) == 0 {
				t.Errorf("panel %q: %q selects no metric", title, e)
			}
			for _, n := range names {
				used[n] = true
				if !known[n] {
					t.Errorf("panel %q queries %s, which btcpipe does not register", title, n)
				}
			}
		}
	}
	for _, prefix := range []string{"btcpipe_monitor_", "btcpipe_crawl_", "btcpipe_frames_", "process_", "go_"} {
		found := false
		for n := range used {
			found = found || strings.HasPrefix(n, prefix)
		}
		if !found {
			t.Errorf("the dashboard queries no %s* metric", prefix)
		}
	}
	// Every btcpipe metric is on some panel.
	var missing []string
	for n := range known {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")
		if !strings.HasPrefix(n, metrics.Namespace+"_") || used[n] || used[base+"_bucket"] || used[base+"_count"] || used[base] {
			continue
		}
		missing = append(missing, n)
	}
	sort.Strings(missing)
	for _, n := range missing {
		if strings.HasSuffix(n, "_sum") || strings.HasSuffix(n, "_count") || strings.HasSuffix(n, "_bucket") {
			continue
		}
		t.Errorf("no panel shows %s", n)
	}
	t.Logf("%d panels, %d metrics queried, %d registered", panels, len(used), len(known))
}
