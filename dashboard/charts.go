package dashboard

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/btcpipe/btcpipe/internal/textfmt"
	"github.com/btcpipe/btcpipe/monitor"
)

// Geometry of the charts, in SVG user units (the SVG scales to its box).
const (
	fullWidth = 1100.0
	halfWidth = 530.0
	rowH      = 26.0
	barH      = 18.0
	fontSize  = 14.0
)

// Colours of the networks, the outcomes and the rest; all have a contrast
// of at least 3:1 against white (WCAG's for graphics).
var networkColors = map[string]string{
	"all": "#1f2933", "ipv4": "#2f6db5", "ipv6": "#1f8a4c", "torv3": "#7b4fc4", "torv2": "#9b7fd4",
	"i2p": "#c4542f", "cjdns": "#a07a00", "onion": "#7b4fc4",
}

var outcomeColors = map[string]string{
	"reachable": "#1f8a4c", "refused": "#c8374a", "timeout": "#b7791f", "reset": "#b03a89",
	"unreachable": "#7b5e99", "handshake_failed": "#c4542f", "closed_after_verack": "#3f74b8",
	"self": "#2b8a99", "version_too_old": "#8a6440", "not_dialled": "#7d8794",
}

const accent = "#2f6db5"

func colorOf(m map[string]string, key string) string {
	if c, ok := m[key]; ok {
		return c
	}
	return "#5f6b7a"
}

// networkOrder is the order networks are listed in (as BIP155 numbers them).
var networkOrder = []string{"ipv4", "ipv6", "torv2", "torv3", "i2p", "cjdns"}

func networkRank(n string) int {
	for i, k := range networkOrder {
		if k == n {
			return i
		}
	}
	return len(networkOrder)
}

// networkLabel names a network as people do.
func networkLabel(n string) string {
	switch n {
	case "ipv4":
		return "IPv4"
	case "ipv6":
		return "IPv6"
	case "torv3":
		return "Tor"
	case "torv2":
		return "Tor v2"
	case "i2p":
		return "I2P"
	case "cjdns":
		return "CJDNS"
	case "all":
		return "all networks"
	}
	return n
}

// item is one category of a bar chart before layout.
type item struct {
	Label string // full label (drawn shortened)
	Value int
	Color string
	Href  string // where a click on the bar goes ("" for none)
}

// bar is one laid-out bar.
type bar struct {
	Label, Full string
	Value       int
	Pct         string
	Color       string
	Href        string
	Y, W        float64
	TextY, NumX float64
}

// hbarChart is a horizontal bar chart, one bar per category.
type hbarChart struct {
	Title         string
	Width, Height float64
	LabelX, BarX  float64
	BarH          float64
	Bars          []bar
	Empty         string
}

// newHBar lays items out: lengths relative to the largest, percentages of
// total. width is fullWidth or halfWidth.
func newHBar(title string, items []item, total int, width float64, empty string) *hbarChart {
	// The label column fits the longest label (8.8 units a character at
	// 14 px leaves room for capitals), within bounds; the bars take the
	// rest but the room for their numbers.
	maxLabel, lo, hi := 50, 110.0, 470.0
	if width < fullWidth {
		maxLabel, lo, hi = 26, 80, 215
	}
	longest := 0
	most := 0
	for _, it := range items {
		most = max(most, it.Value)
		longest = max(longest, len([]rune(textfmt.Shorten(it.Label, maxLabel))))
	}
	labelX := math.Min(math.Max(float64(longest)*8.8+8, lo), hi)
	barX := labelX + 8
	maxW := width - barX - 130
	c := &hbarChart{Title: title, Width: width, LabelX: labelX, BarX: barX, BarH: barH, Empty: empty}
	for i, it := range items {
		b := bar{Full: it.Label, Label: textfmt.Shorten(it.Label, maxLabel), Value: it.Value, Color: it.Color, Href: it.Href,
			Pct: textfmt.Percent(it.Value, total)}
		if b.Label == "" {
			b.Label, b.Full = "(empty)", "(empty)"
		}
		if b.Color == "" {
			b.Color = accent
		}
		b.Y = 6 + float64(i)*rowH
		b.TextY = b.Y + barH/2 + fontSize*0.35
		if most > 0 {
			b.W = round1(float64(it.Value) / float64(most) * maxW)
		}
		if it.Value > 0 && b.W < 2 {
			b.W = 2
		}
		b.NumX = barX + b.W + 8
		c.Bars = append(c.Bars, b)
	}
	c.Height = 6 + float64(len(items))*rowH + 2
	if len(items) == 0 {
		c.Height = 60
	}
	return c
}

// seriesData is one line of a line chart: a value per time (NaN: none).
type seriesData struct {
	Key, Label, Color string
	Values            []float64
}

// series is one laid-out line.
type series struct {
	Key, Label, Color string
	Lines             []string // polylines' points (a gap breaks the line)
	Dots              []dot    // drawn when there are few points
	Last              string   // the last value, as shown
	LastValue         float64
	LastY             float64
	Dash              bool
}

type dot struct{ X, Y float64 }

type tick struct {
	X, Y  float64
	Label string
}

type legendItem struct {
	Key, Label, Color string
	Value             string
}

// lineChart is values over time, one line per series, with a y axis from 0.
type lineChart struct {
	Title               string
	Width, Height       float64
	Left, Right         float64
	Top, Bottom         float64
	Series              []series
	YTicks, XTicks      []tick
	Legend              []legendItem
	Empty               string
	Unit                string
	LabelX              float64
	From, To            string
	Points              int
	SinglePointMarkersR float64
}

// newLineChart lays out series over times (oldest first). unit is appended
// to the y tick labels.
func newLineChart(title string, times []time.Time, data []seriesData, unit, empty string) *lineChart {
	const left, right, top, plotH = 64.0, fullWidth - 150.0, 14.0, 220.0
	c := &lineChart{Title: title, Width: fullWidth, Left: left, Right: right, Top: top, Bottom: top + plotH,
		Empty: empty, Unit: unit, LabelX: right + 10, Points: len(times), SinglePointMarkersR: 3.5}
	c.Height = c.Bottom + 34
	if len(times) == 0 {
		c.Height = 80
		return c
	}
	c.From, c.To = times[0].UTC().Format(timeFormat), times[len(times)-1].UTC().Format(timeFormat)
	most := 0.0
	for _, s := range data {
		for _, v := range s.Values {
			if !math.IsNaN(v) {
				most = math.Max(most, v)
			}
		}
	}
	step := niceStepF(most, 4)
	nTicks := max(1, int(math.Ceil(most/step)))
	yMax := step * float64(nTicks)
	for i := 0; i <= nTicks; i++ {
		v := step * float64(i)
		c.YTicks = append(c.YTicks, tick{Y: round1(c.Bottom - v/yMax*plotH), Label: number(v) + unit})
	}
	t0, t1 := times[0], times[len(times)-1]
	span := t1.Sub(t0)
	x := func(t time.Time) float64 {
		if span <= 0 {
			return (left + right) / 2
		}
		return round1(left + float64(t.Sub(t0))/float64(span)*(right-left))
	}
	y := func(v float64) float64 { return round1(c.Bottom - v/yMax*plotH) }
	c.XTicks = timeTicks(t0, t1, x)
	for _, s := range data {
		ls := series{Key: s.Key, Label: s.Label, Color: s.Color, Dash: s.Key == "all"}
		var pts []string
		last := math.NaN()
		for i, v := range s.Values {
			if math.IsNaN(v) { // a gap: the line breaks
				if len(pts) > 0 {
					ls.Lines = append(ls.Lines, strings.Join(pts, " "))
					pts = nil
				}
				continue
			}
			pts = append(pts, fmt.Sprintf("%s,%s", f(x(times[i])), f(y(v))))
			last = v
			if len(times) <= 4 {
				ls.Dots = append(ls.Dots, dot{x(times[i]), y(v)})
			}
		}
		if math.IsNaN(last) {
			continue
		}
		if len(pts) > 0 {
			ls.Lines = append(ls.Lines, strings.Join(pts, " "))
		}
		ls.LastValue, ls.Last, ls.LastY = last, number(last)+unit, y(last)
		c.Series = append(c.Series, ls)
		c.Legend = append(c.Legend, legendItem{Key: s.Key, Label: s.Label, Color: s.Color, Value: ls.Last})
	}
	// End labels must not overlap: push them apart, top to bottom.
	order := make([]int, len(c.Series))
	for i := range order {
		order[i] = i
	}
	for i := 1; i < len(order); i++ { // insertion sort by LastY
		for j := i; j > 0 && c.Series[order[j]].LastY < c.Series[order[j-1]].LastY; j-- {
			order[j], order[j-1] = order[j-1], order[j]
		}
	}
	prev := -1e9
	for _, i := range order {
		ly := math.Max(c.Series[i].LastY, prev+16)
		c.Series[i].LastY = ly
		prev = ly
	}
	return c
}

// timeTicks picks at most about 7 round times between t0 and t1.
func timeTicks(t0, t1 time.Time, x func(time.Time) float64) []tick {
	span := t1.Sub(t0)
	if span <= 0 {
		return []tick{{X: x(t0), Label: t0.UTC().Format("Jan 2 15:04")}}
	}
	steps := []time.Duration{time.Minute, 5 * time.Minute, 10 * time.Minute, 30 * time.Minute, time.Hour, 3 * time.Hour,
		6 * time.Hour, 12 * time.Hour, 24 * time.Hour, 2 * 24 * time.Hour, 7 * 24 * time.Hour, 14 * 24 * time.Hour, 30 * 24 * time.Hour}
	step := steps[len(steps)-1]
	for _, s := range steps {
		if span/s <= 7 {
			step = s
			break
		}
	}
	layout := "15:04"
	if step >= 24*time.Hour {
		layout = "Jan 2"
	} else if span > 20*time.Hour {
		layout = "Jan 2 15:04"
	}
	var out []tick
	for t := t0.UTC().Truncate(step); !t.After(t1); t = t.Add(step) {
		if t.Before(t0) {
			continue
		}
		out = append(out, tick{X: x(t), Label: t.Format(layout)})
	}
	return out
}

// segment is one run on a timeline.
type segment struct {
	X, W  float64
	Color string
	Title string
	Class string
}

// timelineChart shows when a node was reachable: one bar per run, coloured
// by outcome, along time.
type timelineChart struct {
	Width, Height float64
	Left, Right   float64
	Y, H          float64
	Segments      []segment
	XTicks        []tick
	Legend        []legendItem
	Empty         string
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

func f(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// niceStepF returns a step of 1, 2, 2.5 or 5 × 10^k with ticks × step ≥ most.
func niceStepF(most float64, ticks int) float64 {
	if most <= 0 {
		return 1
	}
	raw := most / float64(ticks)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if s := m * mag; s >= raw {
			if mag >= 1 && s != math.Trunc(s) {
				continue
			}
			return s
		}
	}
	return 10 * mag
}

// number renders v with thousands separators and at most one decimal.
func number(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return textfmt.Group(int64(v))
	}
	if math.Abs(v) >= 100 {
		return textfmt.Group(int64(math.Round(v)))
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

// newTimeline lays out runs (oldest first) between from and to.
func newTimeline(runs []monitor.Run, from, to time.Time) *timelineChart {
	const left, right = 20.0, fullWidth - 20.0
	c := &timelineChart{Width: fullWidth, Left: left, Right: right, Y: 30, H: 30, Height: 92}
	if len(runs) == 0 {
		c.Empty = "no observation in this range"
		return c
	}
	if runs[0].From.Before(from) {
		from = runs[0].From
	}
	if last := runs[len(runs)-1].To; last.After(to) {
		to = last
	}
	span := to.Sub(from)
	x := func(t time.Time) float64 {
		if span <= 0 {
			return left
		}
		return round1(left + float64(t.Sub(from))/float64(span)*(right-left))
	}
	seen := map[string]bool{}
	for _, r := range runs {
		s := segment{X: x(r.From), Color: colorOf(outcomeColors, r.Outcome), Class: r.Outcome}
		s.W = math.Max(x(r.To)-s.X, 3)
		s.Title = fmt.Sprintf("%s: %s to %s (%s snapshots)", r.Outcome, r.From.UTC().Format(timeFormat), r.To.UTC().Format(timeFormat), textfmt.Group(r.Snapshots))
		c.Segments = append(c.Segments, s)
		if !seen[r.Outcome] {
			seen[r.Outcome] = true
			c.Legend = append(c.Legend, legendItem{Key: r.Outcome, Label: r.Outcome, Color: s.Color})
		}
	}
	c.XTicks = timeTicks(from, to, x)
	return c
}
