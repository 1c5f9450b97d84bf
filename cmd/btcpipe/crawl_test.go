package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/btcpipe/btcpipe/crawler"
	"github.com/btcpipe/btcpipe/internal/simnet"
)

func TestCrawlConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		change  func(*CrawlConfig)
		wantErr string
	}{
		{name: "defaults", change: func(*CrawlConfig) {}},
		{name: "seeds", change: func(c *CrawlConfig) { c.Seeds = []string{"127.0.0.1:18444", "[::1]:1", "seed.example", "10.0.0.1"} }},
		{name: "bad seed port", change: func(c *CrawlConfig) { c.Seeds = []string{"1.2.3.4:99999"} }, wantErr: "BTCPIPE_SEEDS"},
		{name: "allow", change: func(c *CrawlConfig) { c.Allow = []string{"127.0.0.0/8", "::1"} }},
		{name: "bad allow", change: func(c *CrawlConfig) { c.Allow = []string{"127.0.0.0/40"} }, wantErr: "BTCPIPE_CRAWL_ALLOW"},
		{name: "blank allow", change: func(c *CrawlConfig) { c.Allow = []string{" "} }, wantErr: "BTCPIPE_CRAWL_ALLOW"},
		{name: "zero concurrency", change: func(c *CrawlConfig) { c.Concurrency = 0 }, wantErr: "BTCPIPE_CRAWL_CONCURRENCY"},
		{name: "negative rate", change: func(c *CrawlConfig) { c.DialRate = -1 }, wantErr: "BTCPIPE_CRAWL_DIAL_RATE"},
		{name: "no rate cap", change: func(c *CrawlConfig) { c.DialRate = 0 }},
		{name: "zero quiet", change: func(c *CrawlConfig) { c.Quiet = 0 }, wantErr: "BTCPIPE_CRAWL_QUIET"},
		{name: "zero connect timeout", change: func(c *CrawlConfig) { c.ConnectTimeout = 0 }, wantErr: "BTCPIPE_CRAWL_CONNECT_TIMEOUT"},
		{name: "negative progress", change: func(c *CrawlConfig) { c.ProgressInterval = -time.Second }, wantErr: "BTCPIPE_CRAWL_PROGRESS_INTERVAL"},
		{name: "no progress", change: func(c *CrawlConfig) { c.ProgressInterval = 0 }},
		{name: "zero max nodes", change: func(c *CrawlConfig) { c.MaxNodes = 0 }, wantErr: "BTCPIPE_CRAWL_MAX_NODES"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := defaultCrawlConfig()
			tt.change(&c)
			err := c.validate()
			if (err != nil) != (tt.wantErr != "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("validate() = %v, want an error naming %q", err, tt.wantErr)
			}
		})
	}
	// The defaults are the crawler's.
	c := defaultCrawlConfig()
	if c.Concurrency != crawler.DefaultConcurrency || c.DialRate != crawler.DefaultDialRate || c.MaxAge != crawler.DefaultMaxAge ||
		c.ProxyTimeout != crawler.DefaultProxyConnectTimeout || c.Quiet != crawler.DefaultQuiet || c.MaxNodes != crawler.DefaultMaxNodes || c.Out != "" {
		t.Errorf("defaults: %+v", c)
	}
}

// newCrawlSim builds a simulated network for the command's tests.
func newCrawlSim(t *testing.T, count map[simnet.Kind]int) (*simnet.Net, *simnet.Graph) {
	t.Helper()
	s, err := simnet.New(simnet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("closing the simnet: %v", err)
		}
	})
	g, err := s.Build(simnet.Layout{Count: count, Decoys: simnet.StandardDecoys(s.Prefix()), Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	return s, g
}

// crawlEnv is the environment of a crawl of s.
func crawlEnv(s *simnet.Net, g *simnet.Graph, extra ...string) []string {
	return append([]string{
		"BTCPIPE_NETWORK=regtest",
		"BTCPIPE_SEEDS=" + g.Seeds[0].String(),
		"BTCPIPE_CRAWL_ALLOW=" + s.Prefix().String(),
		// Generous: on a loaded machine running the race detector a
		// goroutine can wait seconds to be scheduled.
		"BTCPIPE_CRAWL_CONNECT_TIMEOUT=5s",
		"BTCPIPE_CRAWL_HANDSHAKE_TIMEOUT=5s",
		"BTCPIPE_CRAWL_GETADDR_TIMEOUT=5s",
		"BTCPIPE_CRAWL_QUIET=100ms",
		"BTCPIPE_CRAWL_DIAL_RATE=0",
		"BTCPIPE_CRAWL_PROGRESS_INTERVAL=100ms",
	}, extra...)
}

// parseCrawlOutput parses JSON lines: node records, then at most one
// summary. Any other line, a partial line, or a line after the summary
// fails the test.
func parseCrawlOutput(t *testing.T, b []byte) ([]crawler.Record, *crawler.Summary) {
	t.Helper()
	if len(b) == 0 {
		return nil, nil
	}
	if b[len(b)-1] != '\n' {
		t.Fatalf("output ends with a partial line: %q", b[max(0, len(b)-200):])
	}
	var recs []crawler.Record
	var sum *crawler.Summary
	for i, line := range bytes.Split(b[:len(b)-1], []byte("\n")) {
		if sum != nil {
			t.Fatalf("line %d after the summary: %q", i+1, line)
		}
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		switch {
		case bytes.HasPrefix(line, []byte(`{"type":"node",`)):
			var r crawler.Record
			if err := dec.Decode(&r); err != nil {
				t.Fatalf("line %d: %v: %q", i+1, err, line)
			}
			if r.Addr == "" || r.Outcome == "" || r.Time.IsZero() {
				t.Fatalf("line %d is incomplete: %q", i+1, line)
			}
			recs = append(recs, r)
		case bytes.HasPrefix(line, []byte(`{"type":"summary",`)):
			sum = new(crawler.Summary)
			if err := dec.Decode(sum); err != nil {
				t.Fatalf("line %d: %v: %q", i+1, err, line)
			}
		default:
			t.Fatalf("line %d is neither a node nor the summary: %q", i+1, line)
		}
		if dec.More() {
			t.Fatalf("line %d holds more than one JSON value: %q", i+1, line)
		}
	}
	return recs, sum
}

func setenv(t *testing.T, env []string) {
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// TestCrawlCommand runs `btcpipe crawl` in process against a simulated
// network: with BTCPIPE_CRAWL_OUT empty, stdout holds only the JSON lines
// and the log (progress lines included) goes to stderr; with it set, the
// lines go to the file and the log to stdout.
func TestCrawlCommand(t *testing.T) {
	// Checked after every cleanup (the simulated network's included).
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	s, g := newCrawlSim(t, map[simnet.Kind]int{simnet.Good: 60, simnet.Refused: 5, simnet.Garbage: 3, simnet.Stall: 2})
	nodes := len(g.Nodes) + len(simnet.StandardDecoys(s.Prefix()))

	t.Run("stdout", func(t *testing.T) {
		setenv(t, crawlEnv(s, g, "BTCPIPE_CRAWL_OUT="))
		var stdout, stderr bytes.Buffer
		if code := run([]string{"crawl"}, &stdout, &stderr); code != exitOK {
			t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
		}
		recs, sum := parseCrawlOutput(t, stdout.Bytes())
		if len(recs) != nodes || sum == nil || sum.Records != nodes || sum.Interrupted {
			t.Fatalf("%d records, summary %+v; want %d records and a complete summary", len(recs), sum, nodes)
		}
		if sum.ByOutcome[crawler.Reachable] != 60 || sum.ByOutcome[crawler.Refused] != 5 ||
			sum.ByOutcome[crawler.HandshakeFailed] != 3 || sum.ByOutcome[crawler.Timeout] != 2 {
			t.Errorf("by outcome %v", sum.ByOutcome)
		}
		log := stderr.String()
		for _, want := range []string{"crawling regtest", "crawl finished", "in flight"} {
			if !strings.Contains(log, want) {
				t.Errorf("stderr lacks %q:\n%s", want, log)
			}
		}
		if strings.Contains(log, `"type":"node"`) {
			t.Error("node lines on stderr")
		}
	})

	t.Run("file", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "crawl.jsonl")
		if err := os.WriteFile(out, []byte(`{"type":"node","addr":"1.1.1.1:1","network":"ipv4","source":"seed","outcome":"refused","time":"2025-01-01T00:00:00Z"}`+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		setenv(t, crawlEnv(s, g, "BTCPIPE_CRAWL_OUT="+out))
		var stdout, stderr bytes.Buffer
		if code := run([]string{"crawl"}, &stdout, &stderr); code != exitOK {
			t.Fatalf("exit %d; stdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		recs, sum := parseCrawlOutput(t, b)
		if len(recs) != nodes+1 || recs[0].Addr != "1.1.1.1:1" || sum == nil || sum.Records != nodes {
			t.Fatalf("%d lines (first %q), summary %+v; want the old line kept and %d appended", len(recs), recs[0].Addr, sum, nodes)
		}
		if !strings.Contains(stdout.String(), "crawl finished") || strings.Contains(stdout.String(), `"type":"node"`) {
			t.Errorf("stdout should hold the log and no node line:\n%s", stdout.String())
		}
	})

	t.Run("dials", func(t *testing.T) {
		// Every connection goes through the dialer, inside the allowlist.
		setenv(t, crawlEnv(s, g, "BTCPIPE_CRAWL_OUT=", "BTCPIPE_CRAWL_CONCURRENCY=7"))
		st := defaultCrawlSettings()
		if err := load(&st); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var dials []netip.AddrPort
		open, peak := 0, 0
		dial := func(ctx context.Context, ap netip.AddrPort) (net.Conn, error) {
			mu.Lock()
			dials = append(dials, ap)
			open++
			peak = max(peak, open)
			mu.Unlock()
			var d net.Dialer
			c, err := d.DialContext(ctx, "tcp", ap.String())
			if err != nil {
				mu.Lock()
				open--
				mu.Unlock()
				return nil, err
			}
			return &closeHook{Conn: c, f: func() { mu.Lock(); open--; mu.Unlock() }}, nil
		}
		var stdout, stderr bytes.Buffer
		e := &env{log: newLogger(st.Config, &stderr), stdout: &stdout, stderr: &stderr}
		if code := crawl(context.Background(), e, &st, dial); code != exitOK {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
		// BTCPIPE_TRANSPORT=auto (the default): the seed, whose services are
		// unknown, is tried with v2 first and redialled with v1 when the
		// fake node closes; the addresses learned from addr entries lack
		// NODE_P2P_V2 and are dialled with v1 at once.
		distinct := map[netip.AddrPort]int{}
		for _, d := range dials {
			distinct[d]++
		}
		if len(distinct) != len(g.Nodes) || len(dials) != len(g.Nodes)+1 || peak > 7 {
			t.Errorf("%d dials of %d addresses (want %d of %d: one v2 attempt that falls back), peak %d open (limit 7)",
				len(dials), len(distinct), len(g.Nodes)+1, len(g.Nodes), peak)
		}
		for _, d := range dials {
			if !s.Prefix().Contains(d.Addr()) {
				t.Errorf("dialled %v outside %v", d, s.Prefix())
			}
		}
	})
}

type closeHook struct {
	net.Conn
	once sync.Once
	f    func()
}

func (c *closeHook) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.f)
	return err
}

// buildBinary builds btcpipe into a temporary directory.
func buildBinary(tb testing.TB) string {
	tb.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		tb.Fatalf("no go command to build btcpipe with: %v", err)
	}
	bin := filepath.Join(tb.TempDir(), "btcpipe")
	out, err := exec.Command(goCmd, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		tb.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startCrawl starts the binary crawling with env, stdout and stderr to
// files, and returns the process with the paths of its outputs.
func startCrawl(t *testing.T, bin string, env []string) (cmd *exec.Cmd, stdout, stderr string) {
	t.Helper()
	dir := t.TempDir()
	stdout, stderr = filepath.Join(dir, "stdout"), filepath.Join(dir, "stderr")
	open := func(p string) *os.File {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	cmd = exec.Command(bin, "crawl")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BTCPIPE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = open(stdout), open(stderr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, stdout, stderr
}

// waitLines waits until path holds at least n lines.
func waitLines(t *testing.T, path string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(path)
		if bytes.Count(b, []byte("\n")) >= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never reached %d lines", path, n)
}

// wait waits for the process to exit, at most 15 s.
func wait(t *testing.T, cmd *exec.Cmd) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("btcpipe crawl did not exit within 15 s of the signal")
		return nil
	}
}

// TestCrawlSignals builds the binary, crawls a simulated network slowly,
// and interrupts it: after SIGTERM the output holds complete JSON lines
// ending with an interrupted summary; after SIGKILL every line is complete
// and valid and none is partial.
func TestCrawlSignals(t *testing.T) {
	bin := buildBinary(t)
	s, g := newCrawlSim(t, map[simnet.Kind]int{simnet.Good: 300, simnet.Stall: 20, simnet.Refused: 20})
	slow := []string{"BTCPIPE_CRAWL_DIAL_RATE=40", "BTCPIPE_CRAWL_HANDSHAKE_TIMEOUT=5s", "BTCPIPE_CRAWL_QUIET=300ms"}

	t.Run("SIGTERM to file", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "crawl.jsonl")
		cmd, stdout, _ := startCrawl(t, bin, crawlEnv(s, g, append(slow, "BTCPIPE_CRAWL_OUT="+out)...))
		waitLines(t, out, 30)
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := wait(t, cmd); err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
		b, _ := os.ReadFile(out)
		recs, sum := parseCrawlOutput(t, b)
		if sum == nil || !sum.Interrupted || sum.Records != len(recs) || sum.Pending == 0 {
			t.Fatalf("summary %+v after %d records; want an interrupted summary counting them, with addresses pending", sum, len(recs))
		}
		log, _ := os.ReadFile(stdout)
		if !strings.Contains(string(log), "crawl finished") || !strings.Contains(string(log), "interrupted=true") {
			t.Errorf("log lacks the interrupted finish:\n%s", log)
		}
		t.Logf("SIGTERM after %d records: %d pending, %d abandoned", len(recs), sum.Pending, sum.Abandoned)
	})

	t.Run("SIGTERM to stdout", func(t *testing.T) {
		cmd, stdout, stderr := startCrawl(t, bin, crawlEnv(s, g, append(slow, "BTCPIPE_CRAWL_OUT=")...))
		waitLines(t, stdout, 30)
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := wait(t, cmd); err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
		b, _ := os.ReadFile(stdout)
		recs, sum := parseCrawlOutput(t, b) // stdout: nothing but JSON lines
		if sum == nil || !sum.Interrupted || sum.Records != len(recs) {
			t.Fatalf("summary %+v after %d records", sum, len(recs))
		}
		log, _ := os.ReadFile(stderr)
		if !strings.Contains(string(log), "crawl finished") || !strings.Contains(string(log), "in flight") {
			t.Errorf("stderr lacks the progress and finish lines:\n%s", log)
		}
	})

	for _, after := range []int{1, 25, 120} {
		t.Run(fmt.Sprintf("SIGKILL after %d lines", after), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "crawl.jsonl")
			// No dial-rate cap: lines come as fast as they can; the
			// stalled nodes keep the crawl going for 5 s at least.
			cmd, _, _ := startCrawl(t, bin, crawlEnv(s, g, "BTCPIPE_CRAWL_OUT="+out, "BTCPIPE_CRAWL_QUIET=50ms",
				"BTCPIPE_CRAWL_HANDSHAKE_TIMEOUT=5s"))
			waitLines(t, out, after)
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = wait(t, cmd)
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
				t.Errorf("the crawl was not killed by SIGKILL: %v", cmd.ProcessState)
			}
			b, _ := os.ReadFile(out)
			recs, _ := parseCrawlOutput(t, b)
			if len(recs) < after {
				t.Errorf("%d records, want at least %d", len(recs), after)
			}
		})
	}
}

// BenchmarkCrawlBinary5000 runs the btcpipe binary against 5,000 simulated
// nodes in this process and reports the crawl's own figures: wall time, the
// peak RSS of the btcpipe process (getrusage), and its peak goroutine count
// (from the progress lines, every 100 ms). A reachable node holds its
// connection for the quiet period after its addresses, so the wall time is
// about reachable × quiet / concurrency. Run it with
//
//	go test -run='^$' -bench=CrawlBinary5000 -benchtime=1x ./cmd/btcpipe/
func BenchmarkCrawlBinary5000(b *testing.B) {
	if raceEnabled {
		b.Skip("the race detector caps a process at 8,128 goroutines; run this benchmark without -race")
	}
	layout := map[simnet.Kind]int{
		simnet.Good: 4600, simnet.Refused: 200, simnet.Garbage: 50, simnet.CloseAfterVerack: 50,
		simnet.Reset: 50, simnet.Mirror: 25, simnet.OldVersion: 25,
	}
	for _, bc := range []struct{ quiet, concurrency string }{
		{"500ms", "256"}, {"2s", "256"}, {"2s", "1024"},
	} {
		quiet := bc.quiet
		b.Run("quiet="+bc.quiet+"/concurrency="+bc.concurrency, func(b *testing.B) {
			bin := buildBinary(b)
			s, err := simnet.New(simnet.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			g, err := s.Build(simnet.Layout{Count: layout, Fanout: 4, Seed: 1, Height: 800_000})
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				dir := b.TempDir()
				out, logf := filepath.Join(dir, "crawl.jsonl"), filepath.Join(dir, "log")
				lf, err := os.Create(logf)
				if err != nil {
					b.Fatal(err)
				}
				cmd := exec.Command(bin, "crawl")
				cmd.Env = []string{
					"PATH=" + os.Getenv("PATH"),
					"BTCPIPE_NETWORK=regtest",
					"BTCPIPE_SEEDS=" + g.Seeds[0].String(),
					"BTCPIPE_CRAWL_ALLOW=" + s.Prefix().String(),
					"BTCPIPE_CRAWL_OUT=" + out,
					"BTCPIPE_CRAWL_DIAL_RATE=0",
					"BTCPIPE_CRAWL_QUIET=" + quiet,
					"BTCPIPE_CRAWL_CONCURRENCY=" + bc.concurrency,
					"BTCPIPE_CRAWL_PROGRESS_INTERVAL=100ms",
					"BTCPIPE_LOG_FORMAT=json",
				}
				cmd.Stdout, cmd.Stderr = lf, lf
				begin := time.Now()
				err = cmd.Run()
				wall := time.Since(begin)
				lf.Close()
				if err != nil {
					log, _ := os.ReadFile(logf)
					b.Fatalf("btcpipe crawl: %v\n%s", err, log)
				}
				ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
				data, _ := os.ReadFile(out)
				var sum *crawler.Summary
				lines := bytes.Split(bytes.TrimSpace(data), []byte("\n"))
				if err := json.Unmarshal(lines[len(lines)-1], &sum); err != nil || sum.Tried != 5000 ||
					sum.ByOutcome[crawler.Reachable] != layout[simnet.Good] {
					b.Fatalf("summary %+v (%v); want 5000 tried, %d reachable", sum, err, layout[simnet.Good])
				}
				logData, _ := os.ReadFile(logf)
				peakG := 0
				for _, line := range bytes.Split(logData, []byte("\n")) {
					var ev struct {
						Goroutines int `json:"goroutines"`
					}
					if json.Unmarshal(line, &ev) == nil {
						peakG = max(peakG, ev.Goroutines)
					}
				}
				b.ReportMetric(wall.Seconds(), "s/crawl")
				b.ReportMetric(5000/wall.Seconds(), "nodes/s")
				b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MB")
				b.ReportMetric(float64(peakG), "peak-goroutines")
				b.ReportMetric(float64(ru.Utime.Nano()+ru.Stime.Nano())/1e9, "cpu-s")
			}
		})
	}
}
