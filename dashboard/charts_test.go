package dashboard

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/btcpipe/btcpipe/monitor"
)

func TestNiceStep(t *testing.T) {
	for _, c := range []struct {
		most float64
		want float64
	}{
		{0, 1}, {3, 1}, {4, 1}, {7, 2}, {10, 5}, {9, 5}, // counts take whole steps: not 2.5 {1153, 500}, {2001, 1000}, {20_000, 5000}, {0.4, 0.1},
	} {
		if got := niceStepF(c.most, 4); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("niceStepF(%v, 4) = %v, want %v", c.most, got, c.want)
		}
	}
}

func TestLineChartAxis(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	times := []time.Time{t0, t0.Add(time.Hour), t0.Add(2 * time.Hour)}
	c := newLineChart("x", times, []seriesData{{Key: "all", Values: []float64{1000, 1153, 1100}}, {Key: "ipv4", Values: []float64{600, math.NaN(), 610}}}, "", "none")
	if got := c.YTicks[len(c.YTicks)-1].Label; got != "1,500" {
		t.Errorf("top tick %q, want 1,500 (the axis ends near the data)", got)
	}
	if len(c.Series) != 2 || len(c.Series[0].Lines) != 1 || len(c.Series[1].Lines) != 2 {
		t.Errorf("lines %+v: want one unbroken and one broken at the gap", c.Series)
	}
	if c.Series[1].Last != "610" || c.Series[0].Last != "1,100" {
		t.Errorf("last values %q %q", c.Series[0].Last, c.Series[1].Last)
	}
	empty := newLineChart("x", nil, nil, "", "nothing yet")
	if len(empty.Series) != 0 || empty.Empty != "nothing yet" {
		t.Errorf("empty chart %+v", empty)
	}
}

func TestTimeTicks(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 7, 30, 0, 0, time.UTC)
	x := func(time.Time) float64 { return 0 }
	for _, c := range []struct {
		span  time.Duration
		first string
		most  int
	}{
		{2 * time.Hour, "07:30", 8},
		{24 * time.Hour, "Mar 1 12:00", 8},
		{7 * 24 * time.Hour, "Mar 2", 8},
		{30 * 24 * time.Hour, "Mar 2", 8},
	} {
		ticks := timeTicks(t0, t0.Add(c.span), x)
		if len(ticks) == 0 || len(ticks) > c.most || ticks[0].Label != c.first {
			t.Errorf("span %v: %d ticks, first %q; want at most %d, first %q", c.span, len(ticks), firstLabel(ticks), c.most, c.first)
		}
	}
}

func firstLabel(ts []tick) string {
	if len(ts) == 0 {
		return ""
	}
	return ts[0].Label
}

func TestJoinRuns(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := time.Hour
	runs := []monitor.Run{
		{FirstSnapshot: 1, LastSnapshot: 36, From: t0, To: t0.Add(35 * h), Snapshots: 36, Outcome: "reachable"},
		{FirstSnapshot: 37, LastSnapshot: 40, From: t0.Add(36 * h), To: t0.Add(39 * h), Snapshots: 4, Outcome: "reachable"}, // cut: contiguous
		{FirstSnapshot: 50, LastSnapshot: 52, From: t0.Add(49 * h), To: t0.Add(51 * h), Snapshots: 3, Outcome: "timeout"},   // away for 10 snapshots
		{FirstSnapshot: 55, LastSnapshot: 56, From: t0.Add(52 * h), To: t0.Add(53 * h), Snapshots: 2, Outcome: "reachable"}, // ids of other vantages between
	}
	got := joinRuns(runs)
	if !got[0].To.Equal(runs[1].From) {
		t.Error("a run cut after 36 snapshots is not joined to the next")
	}
	if !got[1].To.Equal(runs[1].To) {
		t.Error("a run followed after a gap of 10 snapshots is joined across it")
	}
	if !got[2].To.Equal(runs[3].From) {
		t.Error("runs one snapshot interval apart are not joined")
	}
	if runs[0].To != t0.Add(35*h) {
		t.Error("joinRuns changed its argument")
	}
}

func TestTipIgnoresOneLiar(t *testing.T) {
	heights := make([]int32, 300)
	for i := range heights {
		heights[i] = 900_000 - int32(i%3)
	}
	heights[7] = 2_000_000_000
	if got := tipOf(heights); got != 900_000 {
		t.Errorf("tip %d, want 900000: one node claiming a huge height moves it", got)
	}
}

func TestHBarLabels(t *testing.T) {
	long := strings.Repeat("NETWORK · ", 10)
	c := newHBar("x", []item{{Label: long, Value: 3}, {Label: "", Value: 1}}, 4, fullWidth, "none")
	if r := []rune(c.Bars[0].Label); len(r) > 50 || r[len(r)-1] != '…' {
		t.Errorf("a long label drawn as %q: want it cut to 50 runes with …", c.Bars[0].Label)
	}
	if c.Bars[0].Full != long || c.Bars[1].Label != "(empty)" {
		t.Errorf("labels %q %q", c.Bars[0].Full, c.Bars[1].Label)
	}
	if c.Bars[0].Pct != "75.0%" || c.Bars[0].W <= c.Bars[1].W {
		t.Errorf("bar 0: %s wide %v; bar 1 wide %v", c.Bars[0].Pct, c.Bars[0].W, c.Bars[1].W)
	}
	if c.BarX+c.Bars[0].W+130 > fullWidth+0.01 {
		t.Errorf("the longest bar ends at %v: no room for its number", c.BarX+c.Bars[0].W)
	}
}
