package report

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/btcpipe/btcpipe/crawler"
	"github.com/btcpipe/btcpipe/internal/textfmt"
)

// MaxAgents is how many user agents get a bar of their own; the rest share
// one ("other").
const MaxAgents = 12

// LatencyEdges are the bin edges of the handshake latency chart, in
// milliseconds: bin 0 is below LatencyEdges[0], bin i is
// [LatencyEdges[i-1], LatencyEdges[i]), the last bin is at or above the
// last edge.
var LatencyEdges = []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000}

var latencyLabels = []string{"< 1", "1–2", "2–5", "5–10", "10–20", "20–50", "50–100", "100–200",
	"200–500", "0.5–1 s", "1–2 s", "2–5 s", "≥ 5 s"}

// LagEdges bin how far a node's start height is below the highest one
// seen: bin i holds lags up to LagEdges[i] (inclusive) and above the
// previous edge; the last bin holds the rest.
var LagEdges = []int64{0, 1, 5, 10, 100, 1_000, 10_000}

var lagLabels = []string{"at the tip", "1", "2–5", "6–10", "11–100", "101–1,000", "1,001–10,000", "> 10,000"}

// serviceOrder lists the named service bits, lowest first.
var serviceOrder = []string{"NODE_NETWORK", "NODE_GETUTXO", "NODE_BLOOM", "NODE_WITNESS", "NODE_XTHIN",
	"NODE_COMPACT_FILTERS", "NODE_NETWORK_LIMITED", "NODE_P2P_V2"}

// Colours.
const (
	accent = "#3b6ea5"
)

var outcomeColors = map[crawler.Outcome]string{
	crawler.Reachable:         "#2e9e5b",
	crawler.Refused:           "#d1495b",
	crawler.Timeout:           "#edae49",
	crawler.Reset:             "#c05299",
	crawler.Unreachable:       "#8d6a9f",
	crawler.HandshakeFailed:   "#e07a5f",
	crawler.ClosedAfterVerack: "#5b8fc9",
	crawler.Self:              "#4fb3bf",
	crawler.VersionTooOld:     "#a0785a",
	crawler.ProxyFailed:       "#6b705c",
	crawler.NotDialled:        "#aab2bf",
}

func outcomeColor(o crawler.Outcome) string {
	if c, ok := outcomeColors[o]; ok {
		return c
	}
	return "#6c757d"
}

// Geometry shared by the charts (SVG user units; the SVG scales to the
// page's width).
const (
	chartWidth = 1100
	halfWidth  = 530
	fontSize   = 14
)

// bar is one bar of a horizontal bar chart.
type bar struct {
	Label string // as drawn (shortened)
	Full  string // data-label and tooltip
	Value int
	Pct   string
	Color string
	Y     float64 // top of the bar
	W     float64 // its length
	TextY float64 // baseline of its texts
	NumX  float64 // where its number starts
}

// hbarChart is a horizontal bar chart: one bar per category.
type hbarChart struct {
	Width, Height  float64
	LabelX, BarX   float64
	BarH           float64
	Bars           []bar
	Empty          string // text drawn when there are no bars
	EmptyX, EmptyY float64
}

// newHBar lays bars out, their lengths relative to the longest and their
// percentages relative to total, in a chart of the full width or, when
// half, of half of it (for two charts side by side).
func newHBar(bars []bar, total int, empty string, half bool) *hbarChart {
	const top, rowH, barH = 6, 26, 18
	width, labelX, barX, maxW := float64(chartWidth), 292.0, 300.0, 640.0
	if half {
		width, labelX, barX, maxW = halfWidth, 182, 190, 230
	}
	c := &hbarChart{Width: width, LabelX: labelX, BarX: barX, BarH: barH, Empty: empty}
	most := 0
	for _, b := range bars {
		most = max(most, b.Value)
	}
	for i := range bars {
		b := &bars[i]
		b.Y = float64(top + i*rowH)
		b.TextY = b.Y + barH/2 + fontSize*0.35
		if most > 0 {
			b.W = math.Round(float64(b.Value)/float64(most)*maxW*10) / 10
		}
		if b.Value > 0 && b.W < 2 {
			b.W = 2 // a visible sliver
		}
		b.NumX = barX + b.W + 8
		b.Pct = textfmt.Percent(b.Value, total)
		if b.Label == "" {
			b.Label = textfmt.Shorten(b.Full, 40)
		}
		if b.Color == "" {
			b.Color = accent
		}
	}
	c.Bars = bars
	c.Height = float64(top + len(bars)*rowH + 2)
	if len(bars) == 0 {
		c.Height, c.EmptyX, c.EmptyY = 60, width/2, 36
	}
	return c
}

// segment is one part of a stacked bar.
type segment struct {
	Outcome string
	Value   int
	X, W    float64
	Color   string
	Title   string
}

// stackRow is one stacked bar.
type stackRow struct {
	Label    string
	Total    int
	Y, TextY float64
	NumX     float64
	Segments []segment
}

// legendItem is one entry of a chart's legend.
type legendItem struct {
	Label string
	Color string
	X, Y  float64
}

// stackChart is a horizontal stacked bar chart: one bar per network, one
// segment per outcome, with a legend above.
type stackChart struct {
	Width, Height float64
	LabelX, BarX  float64
	BarH          float64
	Legend        []legendItem
	Rows          []stackRow
}

func newStack(byNetwork map[string]map[crawler.Outcome]int) *stackChart {
	const (
		legendTop, legendRowH = 4, 24
		rowH, barH            = 32, 22
		labelX, barX          = 112, 120
		maxW                  = 820
	)
	c := &stackChart{Width: chartWidth, LabelX: labelX, BarX: barX, BarH: barH}
	present := map[crawler.Outcome]bool{}
	type net struct {
		name  string
		total int
	}
	var nets []net
	most := 0
	for name, byOutcome := range byNetwork {
		n := net{name: name}
		for o, v := range byOutcome {
			n.total += v
			if v > 0 {
				present[o] = true
			}
		}
		most = max(most, n.total)
		nets = append(nets, n)
	}
	slices.SortFunc(nets, func(a, b net) int {
		return cmp.Or(cmp.Compare(networkRank(a.name), networkRank(b.name)), cmp.Compare(a.name, b.name))
	})
	// Legend: the outcomes present, in crawler.Outcomes order, wrapped.
	x, y := 0.0, float64(legendTop)
	for _, o := range allOutcomes(present) {
		w := 20 + float64(len(o))*7.3 + 22
		if x+w > chartWidth && x > 0 {
			x, y = 0, y+legendRowH
		}
		c.Legend = append(c.Legend, legendItem{Label: string(o), Color: outcomeColor(o), X: x, Y: y})
		x += w
	}
	top := y + legendRowH + 10
	for i, n := range nets {
		row := stackRow{Label: n.name, Total: n.total, Y: top + float64(i*rowH)}
		row.TextY = row.Y + barH/2 + fontSize*0.35
		sx := float64(barX)
		for _, o := range allOutcomes(present) {
			v := byNetwork[n.name][o]
			if v == 0 {
				continue
			}
			w := float64(v) / float64(most) * maxW
			row.Segments = append(row.Segments, segment{
				Outcome: string(o), Value: v, X: round1(sx), W: round1(w), Color: outcomeColor(o),
				Title: fmt.Sprintf("%s, %s: %s (%s of %s)", n.name, o, textfmt.Group(v), textfmt.Percent(v, n.total), n.name),
			})
			sx += w
		}
		row.NumX = sx + 8
		c.Rows = append(c.Rows, row)
	}
	c.Height = top + float64(len(nets)*rowH)
	return c
}

// networkRank orders the network types as BIP155 numbers them.
func networkRank(name string) int {
	for i, n := range []string{"ipv4", "ipv6", "torv2", "torv3", "i2p", "cjdns"} {
		if n == name {
			return i
		}
	}
	return 99
}

// allOutcomes returns the outcomes in present, in crawler.Outcomes order
// and then any unknown ones sorted.
func allOutcomes(present map[crawler.Outcome]bool) []crawler.Outcome {
	var out []crawler.Outcome
	for _, o := range crawler.Outcomes {
		if present[o] {
			out = append(out, o)
		}
	}
	var extra []crawler.Outcome
	for o := range present {
		if !slices.Contains(crawler.Outcomes, o) {
			extra = append(extra, o)
		}
	}
	slices.Sort(extra)
	return append(out, extra...)
}

// column is one bin of a histogram.
type column struct {
	Label      string
	Value      int
	Pct        string
	X, W       float64 // bar
	Y, H       float64
	CX         float64 // centre, for the texts
	NumY       float64
	LabelY     float64
	Title      string
	ShowNumber bool
}

// tick is a horizontal grid line with its value.
type tick struct {
	Y     float64
	Label string
}

// histChart is a vertical bar chart of bins.
type histChart struct {
	Width, Height      float64
	Left, Right        float64
	Top, Bottom        float64 // plot area
	Columns            []column
	Ticks              []tick
	AxisTitle          string
	AxisTitleX, TitleY float64
}

func newHist(labels []string, counts []int, axisTitle, unit string) *histChart {
	const (
		left, right   = 64.0, chartWidth - 16.0
		top, plotH    = 16.0, 160.0
		labelGap      = 22.0
		titleGap      = 46.0
		barFraction   = 0.78
		minTickHeight = 4
	)
	c := &histChart{Width: chartWidth, Left: left, Right: right, Top: top, Bottom: top + plotH,
		AxisTitle: axisTitle, AxisTitleX: (left + right) / 2, TitleY: top + plotH + titleGap}
	c.Height = c.TitleY + 12
	total, most := 0, 0
	for _, v := range counts {
		total += v
		most = max(most, v)
	}
	step := niceStep(most, minTickHeight)
	yMax := step * minTickHeight
	for i := 0; i <= minTickHeight; i++ {
		v := step * i
		c.Ticks = append(c.Ticks, tick{Y: round1(c.Bottom - float64(v)/float64(yMax)*plotH), Label: textfmt.Group(v)})
	}
	slot := (right - left) / float64(len(counts))
	for i, v := range counts {
		h := float64(v) / float64(yMax) * plotH
		if v > 0 && h < 1.5 {
			h = 1.5
		}
		w := slot * barFraction
		col := column{
			Label: labels[i], Value: v, Pct: textfmt.Percent(v, total),
			X: round1(left + float64(i)*slot + (slot-w)/2), W: round1(w),
			Y: round1(c.Bottom - h), H: round1(h),
			CX: round1(left + (float64(i)+0.5)*slot), LabelY: c.Bottom + labelGap,
			ShowNumber: v > 0,
		}
		col.NumY = col.Y - 6
		col.Title = fmt.Sprintf("%s %s: %s (%s)", labels[i], unit, textfmt.Group(v), col.Pct)
		c.Columns = append(c.Columns, col)
	}
	return c
}

// niceStep returns a step of 1, 2 or 5 × 10^k such that ticks × step ≥ most.
func niceStep(most, ticks int) int {
	if most <= ticks {
		return 1
	}
	raw := float64(most) / float64(ticks)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if s := m * mag; s >= raw && s == math.Trunc(s) {
			return int(s)
		}
	}
	return int(10 * mag)
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

// latencyBin returns the LatencyEdges bin of ms.
func latencyBin(ms float64) int {
	for i, e := range LatencyEdges {
		if ms < e {
			return i
		}
	}
	return len(LatencyEdges)
}

// lagBin returns the LagEdges bin of lag.
func lagBin(lag int64) int {
	for i, e := range LagEdges {
		if lag <= e {
			return i
		}
	}
	return len(LagEdges)
}
