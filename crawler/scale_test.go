package crawler

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/btcpipe/btcpipe/internal/simnet"
)

// scaleLayout is the 5,000-node network of BenchmarkCrawl5000: mostly good
// nodes, and failures that end at once (a stall or a blackhole would only
// measure a timeout, not the crawler).
var scaleLayout = map[simnet.Kind]int{
	simnet.Good: 4600, simnet.Refused: 200, simnet.Garbage: 50, simnet.CloseAfterVerack: 50,
	simnet.Reset: 50, simnet.Mirror: 25, simnet.OldVersion: 25,
}

// BenchmarkCrawl5000 crawls 5,000 simulated nodes in this process with the
// default concurrency (256) and no dial-rate cap, and reports the wall time
// of one crawl, the peak goroutine count and the peak RSS of the process
// (simulated network included) over the crawl. Run it with
//
//	go test -run='^$' -bench=Crawl5000 -benchtime=1x ./crawler/
//
// The figures are in crawler/SCALE.md.
func BenchmarkCrawl5000(b *testing.B) {
	if raceEnabled {
		b.Skip("the race detector caps a process at 8,128 goroutines; run this benchmark without -race")
	}
	for _, quiet := range []time.Duration{500 * time.Millisecond, DefaultQuiet} {
		b.Run("quiet="+quiet.String(), func(b *testing.B) { benchmarkCrawl(b, quiet) })
	}
}

func benchmarkCrawl(b *testing.B, quiet time.Duration) {
	total := 0
	for _, n := range scaleLayout {
		total += n
	}
	raiseNoFile(b, uint64(total+4*DefaultConcurrency+256))
	s := newSim(b, simnet.Options{})
	g, err := s.Build(simnet.Layout{Count: scaleLayout, Fanout: 4, Seed: 1, Height: 800_000})
	if err != nil {
		b.Fatal(err)
	}
	idleGoroutines := runtime.NumGoroutine()
	idleRSS := procStatus(b, "VmRSS")
	var peakG atomic.Int64
	var last Summary
	for b.Loop() {
		rec := newDialRecorder(b, s.Prefix())
		cfg := simConfig(s, g, rec, NewJSONLines(discard{}))
		cfg.Concurrency = DefaultConcurrency
		cfg.ConnectTimeout, cfg.HandshakeTimeout, cfg.GetAddrTimeout = DefaultConnectTimeout, DefaultHandshakeTimeout, DefaultGetAddrTimeout
		cfg.Quiet = quiet
		cfg.DialRate = -1 // no cap: this measures the crawler, not the cap
		c, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		resetPeakRSS(b)
		stop := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			t := time.NewTicker(5 * time.Millisecond)
			defer t.Stop()
			for {
				if n := int64(runtime.NumGoroutine()); n > peakG.Load() {
					peakG.Store(n)
				}
				select {
				case <-t.C:
				case <-stop:
					return
				}
			}
		}()
		last, err = c.Run(testContext(b))
		close(stop)
		<-sampled
		if err != nil {
			b.Fatal(err)
		}
		if got := last.ByOutcome[Reachable]; got != scaleLayout[simnet.Good] || last.Tried != total {
			b.Fatalf("reachable %d of %d tried; want %d of %d", got, last.Tried, scaleLayout[simnet.Good], total)
		}
		if _, _, _, peak := rec.snapshot(); peak > DefaultConcurrency {
			b.Fatalf("%d connections at once, over %d", peak, DefaultConcurrency)
		}
	}
	peakRSS := procStatus(b, "VmHWM")
	b.ReportMetric(last.Seconds, "s/crawl")
	b.ReportMetric(float64(total)/last.Seconds, "nodes/s")
	b.ReportMetric(float64(peakG.Load()), "peak-goroutines")
	b.ReportMetric(float64(peakG.Load()-int64(idleGoroutines)), "crawl-goroutines")
	b.ReportMetric(float64(peakRSS)/1024, "peak-RSS-MB")
	b.ReportMetric(float64(idleRSS)/1024, "idle-RSS-MB")
	b.Logf("%d nodes in %.2fs; goroutines: %d idle (the simulated network), %d at peak; RSS: %d MB idle, %d MB at peak",
		total, last.Seconds, idleGoroutines, peakG.Load(), idleRSS/1024, peakRSS/1024)
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

// raiseNoFile raises the soft RLIMIT_NOFILE to at least need (up to the hard
// limit; Go already raises the soft limit to the hard one at start on
// Linux), and fails if the hard limit is lower.
func raiseNoFile(tb testing.TB, need uint64) {
	tb.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		tb.Fatal(err)
	}
	if lim.Cur >= need {
		return
	}
	if lim.Max < need {
		tb.Fatalf("RLIMIT_NOFILE hard limit %d is below the %d descriptors needed (ulimit -Hn)", lim.Max, need)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		tb.Fatal(err)
	}
}

// procStatus returns a kB field of /proc/self/status (VmRSS, VmHWM).
func procStatus(tb testing.TB, field string) int64 {
	tb.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return kb
		}
	}
	tb.Fatal(fmt.Errorf("no %s in /proc/self/status", field))
	return 0
}

// resetPeakRSS resets VmHWM to the current RSS (Linux: clear_refs 5).
func resetPeakRSS(tb testing.TB) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		tb.Logf("cannot reset the peak RSS (%v); VmHWM includes the set-up", err)
	}
}
