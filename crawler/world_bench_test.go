//go:build linux

package crawler

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/btcpipe/btcpipe/internal/fakesam"
	"github.com/btcpipe/btcpipe/internal/fakesocks"
	"github.com/btcpipe/btcpipe/internal/simnet"
	"github.com/btcpipe/btcpipe/netreach"
	"github.com/btcpipe/btcpipe/peer"
	"github.com/btcpipe/btcpipe/wire"
)

// The world benchmark: a crawl at default settings of 60,000 addresses of
// which 6,000 are reachable nodes on all five networks, the rest black
// holes, refused, stale and unroutable addresses. Loopback cannot black-hole
// without two descriptors per address, so the benchmark builds two network
// namespaces (a veth route from the first into the second, empty one makes
// 11.2.0.0/16 a range of black holes; 12.0.0.0/16 has no route at all) and
// runs the simulated world and the crawler in this test binary re-executed
// inside the first namespace (ip netns exec): nothing on the host dials those
// addresses. Run it with
//
//	make crawl-bench
//	(go test -run='^$' -bench=CrawlWorld -benchtime=1x -timeout=30m ./crawler/, as root)
//
// The figures are in the README.

const (
	worldChildEnv  = "BTCPIPE_WORLD_CHILD" // "reachable,deadPerNode" in the child
	worldBlackhole = "11.2.0.0/16"
	worldNoRoute   = "12.0.0.0/16"
	worldCJDNS     = "fc00::1"
)

// worldFigures is what the child reports.
type worldFigures struct {
	Addresses, Reachable           int
	Seconds                        float64
	Summary                        Summary
	PeakConns, Concurrency         int
	PeakFDs                        int // every descriptor of the process (the simulated world's too)
	IdleRSSMB, PeakRSSMB           float64
	IdleGoroutines, PeakGoroutines int
	BlackholeCheck                 string
}

// BenchmarkCrawlWorld runs the crawl twice: in-process (the crawler as a
// library beside the world) and as the btcpipe binary (configured only
// through its BTCPIPE_* variables) against the world hosted by the test
// process, so that its RSS and descriptors are the crawler's alone.
func BenchmarkCrawlWorld(b *testing.B) {
	for _, size := range []struct {
		name      string
		reachable int
	}{{"60k", 6000}} {
		if v := os.Getenv("BTCPIPE_WORLD_REACHABLE"); v != "" { // a smaller world, to try the set-up
			size.name = v + "reachable"
			fmt.Sscan(v, &size.reachable)
		}
		for _, binary := range []bool{false, true} {
			name := size.name + "/in-process"
			if binary {
				name = size.name + "/binary"
			}
			b.Run(name, func(b *testing.B) { benchmarkWorld(b, size.reachable, binary) })
		}
	}
}

func benchmarkWorld(b *testing.B, reachable int, binary bool) {
	if os.Geteuid() != 0 {
		b.Skip("the world benchmark needs root (ip netns)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		b.Skip("the world benchmark needs ip (iproute2)")
	}
	if raceEnabled {
		b.Skip("the race detector caps a process at 8,128 goroutines; run this benchmark without -race")
	}
	for b.Loop() {
		ns := fmt.Sprintf("btcpipe-world-%d", os.Getpid())
		hole := ns + "-s"
		cleanup := func() {
			for _, n := range []string{ns, hole} {
				if out, err := exec.Command("ip", "netns", "pids", n).Output(); err == nil {
					for _, pid := range strings.Fields(string(out)) {
						_ = exec.Command("kill", "-9", pid).Run()
					}
				}
				_ = exec.Command("ip", "netns", "del", n).Run()
			}
		}
		b.Cleanup(cleanup)
		for _, args := range [][]string{
			{"netns", "add", ns}, {"netns", "add", hole},
			{"-n", ns, "link", "set", "lo", "up"},
			{"-n", ns, "addr", "add", worldCJDNS + "/128", "dev", "lo"},
			{"link", "add", "v0", "netns", ns, "type", "veth", "peer", "name", "v1", "netns", hole},
			{"-n", ns, "link", "set", "v0", "up"}, {"-n", hole, "link", "set", "v1", "up"},
			{"-n", ns, "addr", "add", "10.99.0.1/30", "dev", "v0"},
			{"-n", hole, "addr", "add", "10.99.0.2/30", "dev", "v1"},
			{"-n", ns, "route", "add", worldBlackhole, "via", "10.99.0.2", "dev", "v0"},
		} {
			if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
				b.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
			}
		}
		self, err := os.Executable()
		if err != nil {
			b.Fatal(err)
		}
		cmd := exec.Command("ip", "netns", "exec", ns, self, "-test.run=^TestWorldChild$", "-test.v", "-test.timeout=25m")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", worldChildEnv, reachable), worldChildEnv+"_NS="+ns)
		if binary {
			bin := filepath.Join(b.TempDir(), "btcpipe")
			build := exec.Command("go", "build", "-o", bin, "github.com/btcpipe/btcpipe/cmd/btcpipe")
			if out, err := build.CombinedOutput(); err != nil {
				b.Fatalf("go build: %v: %s", err, out)
			}
			cmd.Env = append(cmd.Env, worldChildEnv+"_BINARY="+bin)
		}
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		var fig worldFigures
		found := false
		for line := range strings.SplitSeq(string(out), "\n") {
			if v, ok := strings.CutPrefix(line, "WORLD "); ok {
				if jerr := json.Unmarshal([]byte(v), &fig); jerr != nil {
					b.Fatal(jerr)
				}
				found = true
			} else if strings.Contains(line, "FAIL") || strings.Contains(line, "world_bench_test.go") {
				b.Log(line)
			}
		}
		if err != nil || !found {
			b.Fatalf("the crawl in the namespace failed: %v\n%s", err, tail([]byte(out)))
		}
		cleanup()
		s := fig.Summary
		b.ReportMetric(fig.Seconds, "s/crawl")
		b.ReportMetric(float64(fig.Addresses)/fig.Seconds, "addrs/s")
		b.ReportMetric(fig.PeakRSSMB, "peak-RSS-MB")
		b.ReportMetric(float64(fig.PeakConns), "peak-conns")
		b.ReportMetric(float64(fig.PeakFDs), "peak-fds-process")
		b.Logf("%d addresses (%d reachable) in %.1fs at default settings (concurrency %d, %g dials/s, connect timeout %s)",
			fig.Addresses, fig.Reachable, fig.Seconds, fig.Concurrency, float64(DefaultDialRate), DefaultConnectTimeout)
		b.Logf("reachable by network %v, unique nodes %d (%d multi-network); stale %d; outcomes %v",
			s.ReachableByNetwork, s.UniqueNodes, s.MultiNetwork, s.Stale, s.ByOutcome)
		if binary {
			b.Logf("btcpipe crawl process: peak RSS %.0f MB, descriptors at peak %d (limit %d connections); black-hole check: %s",
				fig.PeakRSSMB, fig.PeakFDs, fig.Concurrency, fig.BlackholeCheck)
		} else {
			b.Logf("crawler connections at once: %d (limit %d); descriptors of the whole process at peak: %d", fig.PeakConns, fig.Concurrency, fig.PeakFDs)
			b.Logf("RSS: %.0f MB idle (the simulated world), %.0f MB at peak; goroutines %d idle, %d at peak; black-hole check: %s",
				fig.IdleRSSMB, fig.PeakRSSMB, fig.IdleGoroutines, fig.PeakGoroutines, fig.BlackholeCheck)
		}
	}
}

// netnsDialer is the crawler's direct Dial in the namespace: it dials only
// the world's ranges and counts the connections open at once (with the
// proxy connections, counted by proxyDials).
type netnsDialer struct {
	allow []netip.Prefix
	pd    *proxyDials

	mu         sync.Mutex
	open, peak int
	forbidden  []netip.AddrPort
}

func (d *netnsDialer) note(delta int) {
	d.mu.Lock()
	d.open += delta
	d.pd.mu.Lock()
	d.peak = max(d.peak, d.open+d.pd.open)
	d.pd.mu.Unlock()
	d.mu.Unlock()
}

func (d *netnsDialer) dial(ctx context.Context, ap netip.AddrPort) (net.Conn, error) {
	ok := false
	for _, p := range d.allow {
		ok = ok || p.Contains(ap.Addr())
	}
	if !ok {
		d.mu.Lock()
		d.forbidden = append(d.forbidden, ap)
		d.mu.Unlock()
		return nil, fmt.Errorf("world dialer: %v is outside the world", ap)
	}
	d.note(1)
	var nd net.Dialer
	c, err := nd.DialContext(ctx, "tcp", ap.String())
	if err != nil {
		d.note(-1)
		return nil, err
	}
	return &worldConn{Conn: c, d: d}, nil
}

type worldConn struct {
	net.Conn
	d    *netnsDialer
	once sync.Once
}

func (c *worldConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.d.note(-1) })
	return err
}

// inNetns reports whether this process runs in the network namespace
// named name (ip netns: /run/netns/NAME).
func inNetns(name string) bool {
	if name == "" || strings.ContainsAny(name, "/.") {
		return false
	}
	self, err1 := os.Stat("/proc/self/ns/net")
	ns, err2 := os.Stat("/run/netns/" + name)
	return err1 == nil && err2 == nil && os.SameFile(self, ns)
}

// TestWorldChild is the benchmark's crawl inside the namespace; it does
// nothing unless BenchmarkCrawlWorld started it.
func TestWorldChild(t *testing.T) {
	spec := os.Getenv(worldChildEnv)
	if spec == "" {
		t.Skip("run by BenchmarkCrawlWorld inside its network namespace")
	}
	if !inNetns(os.Getenv(worldChildEnv + "_NS")) {
		t.Fatal("refusing to crawl public-looking addresses outside a network namespace")
	}
	var reachable int
	if _, err := fmt.Sscan(spec, &reachable); err != nil {
		t.Fatal(err)
	}
	raiseNoFile(t, 20000)
	fig := worldFigures{Reachable: reachable, Concurrency: DefaultConcurrency}

	// A black hole must time out, not fail at once.
	probe := time.Now()
	c, err := net.DialTimeout("tcp", "11.2.0.1:8333", 300*time.Millisecond)
	if c != nil {
		c.Close()
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("a connect into %s: %v after %s; want a timeout", worldBlackhole, err, time.Since(probe))
	}
	fig.BlackholeCheck = fmt.Sprintf("connect timed out after %s", time.Since(probe).Round(time.Millisecond))

	s, err := simnet.New(simnet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	socks := fakesocks.Start(t, fakesocks.Options{})
	sam := fakesam.Start(t)
	w, err := s.BuildWorld(simnet.World{
		Reachable: reachable,
		// The July 2023 shape: Tor v3 54 %, IPv6 8 %, I2P 4 %, CJDNS 1 %.
		Share:            map[wire.NetID]float64{wire.NetTorV3: 0.54, wire.NetIPv6: 0.08, wire.NetI2P: 0.04, wire.NetCJDNS: 0.01},
		Onion:            func(t netip.AddrPort) wire.NetAddrV2 { return socks.AddOnion(t, 8333) },
		I2P:              sam.AddNode,
		IPv6:             netip.IPv6Loopback(),
		CJDNS:            netip.MustParseAddr(worldCJDNS),
		MultiNetwork:     reachable / 50,
		Dead:             simnet.DeadMix{Blackhole: 5, Refused: 2, Stale: 1, Unroutable: 1},
		BlackholePrefix:  netip.MustParsePrefix(worldBlackhole),
		UnroutablePrefix: netip.MustParsePrefix(worldNoRoute),
		Seed:             60,
	})
	if err != nil {
		t.Fatal(err)
	}
	fig.Addresses = w.Addresses()
	if bin := os.Getenv(worldChildEnv + "_BINARY"); bin != "" {
		runWorldBinary(t, bin, s, w, socks, sam, &fig)
		return
	}

	pd := &proxyDials{}
	nd := &netnsDialer{pd: pd, allow: []netip.Prefix{s.Prefix(), netip.MustParsePrefix("::1/128"),
		netip.MustParsePrefix(worldCJDNS + "/128"), netip.MustParsePrefix(worldBlackhole), netip.MustParsePrefix(worldNoRoute)}}
	seeds := []string{w.Seeds[0].String()}
	cfg := Config{
		Session: peer.DefaultConfig(&wire.Regtest),
		Seeds:   seeds,
		Allow:   nd.allow,
		Reach: netreach.Config{TorProxy: socks.Addr().String(), I2PSAM: sam.Addr().String(), CJDNSReachable: true,
			ProxyDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := pd.dial(ctx, network, addr)
				nd.note(0)
				return c, err
			}},
		Dial: nd.dial,
		Resolve: func(ctx context.Context, host string) ([]netip.Addr, error) {
			return nil, errors.New("no name resolution in the world")
		},
		Out: NewJSONLines(discard{}),
		// Everything else at its default.
	}
	crawler, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	fig.IdleGoroutines = runtime.NumGoroutine()
	fig.IdleRSSMB = float64(procStatus(t, "VmRSS")) / 1024
	resetPeakRSS(t)
	var peakG, peakFD atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			if n := int64(runtime.NumGoroutine()); n > peakG.Load() {
				peakG.Store(n)
			}
			if ents, err := os.ReadDir("/proc/self/fd"); err == nil && int64(len(ents)) > peakFD.Load() {
				peakFD.Store(int64(len(ents)))
			}
			select {
			case <-tk.C:
			case <-stop:
				return
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	sum, err := crawler.Run(ctx)
	close(stop)
	<-sampled
	if err != nil {
		t.Fatal(err)
	}
	fig.Seconds = sum.Seconds
	fig.Summary = sum
	fig.PeakRSSMB = float64(procStatus(t, "VmHWM")) / 1024
	fig.PeakGoroutines = int(peakG.Load())
	fig.PeakFDs = int(peakFD.Load())
	nd.mu.Lock()
	fig.PeakConns = nd.peak
	forbidden := nd.forbidden
	nd.mu.Unlock()
	if len(forbidden) > 0 || len(pd.forbidden) > 0 {
		t.Errorf("dialled outside the world: %v %v", forbidden[:min(5, len(forbidden))], pd.forbidden)
	}
	if fig.PeakConns > DefaultConcurrency+1 { // +1: the SAM session's control connection
		t.Errorf("%d connections at once, over the limit of %d", fig.PeakConns, DefaultConcurrency)
	}
	if got := sum.UniqueNodes; got != reachable {
		t.Errorf("unique reachable nodes %d, want %d (%v)", got, reachable, sum.ReachableByNetwork)
	}
	if sum.Stale != len(w.Stale) {
		t.Errorf("stale %d, want %d", sum.Stale, len(w.Stale))
	}
	line, _ := json.Marshal(fig)
	bw := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(bw, "\nWORLD %s\n", line)
	bw.Flush()
}

// runWorldBinary crawls w with the btcpipe binary at bin, configured only
// through BTCPIPE_* variables (defaults for everything but where to start,
// the allowlist and the ways to Tor, I2P and CJDNS), and measures its peak
// RSS (getrusage) and descriptors (/proc/PID/fd, sampled).
func runWorldBinary(t *testing.T, bin string, s *simnet.Net, w *simnet.WorldGraph, socks *fakesocks.Server, sam *fakesam.Bridge, fig *worldFigures) {
	out := filepath.Join(t.TempDir(), "crawl.jsonl")
	cmd := exec.Command(bin, "crawl")
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"BTCPIPE_NETWORK=regtest",
		"BTCPIPE_SEEDS=" + w.Seeds[0].String(),
		"BTCPIPE_CRAWL_ALLOW=" + strings.Join([]string{s.Prefix().String(), "::1/128", worldBlackhole, worldNoRoute}, ","),
		"BTCPIPE_TOR_PROXY=" + socks.Addr().String(),
		"BTCPIPE_I2P_SAM=" + sam.Addr().String(),
		"BTCPIPE_CJDNS_REACHABLE=true",
		"BTCPIPE_CRAWL_OUT=" + out,
		"BTCPIPE_LOG_LEVEL=warn",
	}
	cmd.Stderr = os.Stderr
	var stdout strings.Builder
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	fdDir := fmt.Sprintf("/proc/%d/fd", cmd.Process.Pid)
	peakFD := 0
	tk := time.NewTicker(20 * time.Millisecond)
	defer tk.Stop()
	var err error
wait:
	for {
		select {
		case err = <-done:
			break wait
		case <-tk.C:
			if ents, rerr := os.ReadDir(fdDir); rerr == nil {
				peakFD = max(peakFD, len(ents))
			}
		}
	}
	if err != nil {
		t.Fatalf("btcpipe crawl: %v\n%s", err, stdout.String())
	}
	fig.PeakFDs = peakFD
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		fig.PeakRSSMB = float64(ru.Maxrss) / 1024
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &fig.Summary); err != nil || fig.Summary.Type != SummaryType {
		t.Fatalf("last line is not the summary (%v): %q", err, lines[len(lines)-1])
	}
	fig.Seconds = fig.Summary.Seconds
	if got := fig.Summary.UniqueNodes; got != fig.Reachable {
		t.Errorf("unique reachable nodes %d, want %d (%v)", got, fig.Reachable, fig.Summary.ReachableByNetwork)
	}
	if fig.Summary.Stale != len(w.Stale) {
		t.Errorf("stale %d, want %d", fig.Summary.Stale, len(w.Stale))
	}
	line, _ := json.Marshal(fig)
	fmt.Printf("\nWORLD %s\n", line)
}
