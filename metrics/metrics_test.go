package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/btcpipe/btcpipe/crawler"
	"github.com/btcpipe/btcpipe/metrics"
	"github.com/btcpipe/btcpipe/peer"
	"github.com/btcpipe/btcpipe/pipeline"
	"github.com/btcpipe/btcpipe/stages"
	"github.com/btcpipe/btcpipe/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// frame returns msg framed for regtest, as the framer would cut it.
func frame(t testing.TB, msg wire.Message) (*wire.Frame, []byte) {
	t.Helper()
	b := wire.AppendMessage(nil, wire.Regtest.Magic, msg)
	f, n, err := wire.ScanFrame(b, wire.Regtest.Magic)
	if err != nil || n != len(b) {
		t.Fatalf("ScanFrame = %d, %v; want %d, nil", n, err, len(b))
	}
	return &f, b
}

// rawFrame frames an arbitrary command.
func rawFrame(t testing.TB, cmd string, payload []byte) *wire.Frame {
	t.Helper()
	b := wire.AppendFrame(nil, wire.Regtest.Magic, cmd, payload)
	f, _, err := wire.ScanFrame(b, wire.Regtest.Magic)
	if err != nil {
		t.Fatalf("ScanFrame(%q): %v", cmd, err)
	}
	return &f
}

// family gathers m and returns the family called name (nil if absent).
func family(t *testing.T, m *metrics.Metrics, name string) *dto.MetricFamily {
	t.Helper()
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			return f
		}
	}
	return nil
}

// value returns the value of the series of name with exactly labels
// (name=value pairs); it fails the test when there is no such series.
func value(t *testing.T, m *metrics.Metrics, name string, labels ...string) float64 {
	t.Helper()
	f := family(t, m, name)
	if f == nil {
		t.Fatalf("no metric %s", name)
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
next:
	for _, s := range f.GetMetric() {
		if len(s.GetLabel()) != len(want) {
			continue
		}
		for _, l := range s.GetLabel() {
			if want[l.GetName()] != l.GetValue() {
				continue next
			}
		}
		switch {
		case s.Counter != nil:
			return s.Counter.GetValue()
		case s.Gauge != nil:
			return s.Gauge.GetValue()
		case s.Histogram != nil:
			return float64(s.Histogram.GetSampleCount())
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

func TestObserverCountsFramesAndBytesByCommandAndDirection(t *testing.T) {
	m := metrics.New()
	obs := m.Observer()
	ver, verBytes := frame(t, &wire.Version{Protocol: wire.ProtocolVersion, UserAgent: "/test:1/"})
	ping, pingBytes := frame(t, &wire.Ping{Nonce: 7, HasNonce: true})
	obs.FrameIn(ver)
	obs.FrameIn(ping)
	obs.FrameIn(ping)
	obs.FrameOut(wire.CmdPing, pingBytes)
	obs.FrameOut(wire.CmdVersion, verBytes)
	obs.FrameOut(wire.CmdVersion, verBytes)
	obs.FrameOut(wire.CmdVersion, verBytes)

	for _, tc := range []struct {
		name, command, direction string
		want                     float64
	}{
		{"btcpipe_frames_total", wire.CmdVersion, metrics.In, 1},
		{"btcpipe_frames_total", wire.CmdPing, metrics.In, 2},
		{"btcpipe_frames_total", wire.CmdPing, metrics.Out, 1},
		{"btcpipe_frames_total", wire.CmdVersion, metrics.Out, 3},
		{"btcpipe_frames_total", wire.CmdAddr, metrics.In, 0},
		{"btcpipe_bytes_total", wire.CmdVersion, metrics.In, float64(len(verBytes))},
		{"btcpipe_bytes_total", wire.CmdPing, metrics.In, float64(2 * len(pingBytes))},
		{"btcpipe_bytes_total", wire.CmdPing, metrics.Out, float64(len(pingBytes))},
		{"btcpipe_bytes_total", wire.CmdVersion, metrics.Out, float64(3 * len(verBytes))},
	} {
		if got := value(t, m, tc.name, "command", tc.command, "direction", tc.direction); got != tc.want {
			t.Errorf("%s{command=%q,direction=%q} = %v, want %v", tc.name, tc.command, tc.direction, got, tc.want)
		}
	}
}

func TestUnknownCommandsShareOneLabel(t *testing.T) {
	m := metrics.New()
	obs := m.Observer()
	const n = 500
	for i := range n {
		cmd := fmt.Sprintf("x%d", i)
		f := rawFrame(t, cmd, []byte{1, 2, 3})
		obs.FrameIn(f)
		obs.Decoded(&wire.Raw{Cmd: cmd, Payload: f.Payload})
		obs.DecodeFailed(f, wire.ErrTruncated)
		obs.FrameOut(cmd, []byte("0123456789012345678901234567"))
	}
	// tx is carried as Raw too, but it is a known command.
	obs.Decoded(&wire.Raw{Cmd: wire.CmdTx})

	if got := value(t, m, "btcpipe_frames_total", "command", metrics.OtherCommand, "direction", metrics.In); got != n {
		t.Errorf("frames_total{command=other,direction=in} = %v, want %d", got, n)
	}
	if got := value(t, m, "btcpipe_frames_total", "command", metrics.OtherCommand, "direction", metrics.Out); got != n {
		t.Errorf("frames_total{command=other,direction=out} = %v, want %d", got, n)
	}
	if got := value(t, m, "btcpipe_bytes_total", "command", metrics.OtherCommand, "direction", metrics.In); got != n*(wire.HeaderSize+3) {
		t.Errorf("bytes_total{command=other,direction=in} = %v, want %d", got, n*(wire.HeaderSize+3))
	}
	if got := value(t, m, "btcpipe_unknown_commands_total"); got != n {
		t.Errorf("unknown_commands_total = %v, want %d", got, n)
	}
	if got := value(t, m, "btcpipe_decode_failures_total", "command", metrics.OtherCommand); got != n {
		t.Errorf("decode_failures_total{command=other} = %v, want %d", got, n)
	}
	// The label sets are fixed at construction, whatever the peer sends.
	wantSeries := 2 * (len(wire.KnownCommands) + 1)
	for _, name := range []string{"btcpipe_frames_total", "btcpipe_bytes_total"} {
		if got := len(family(t, m, name).GetMetric()); got != wantSeries {
			t.Errorf("%s has %d series, want %d", name, got, wantSeries)
		}
	}
	if got := len(family(t, m, "btcpipe_decode_failures_total").GetMetric()); got != len(wire.KnownCommands)+1 {
		t.Errorf("decode_failures_total has %d series, want %d", got, len(wire.KnownCommands)+1)
	}
}

func TestChecksumFailures(t *testing.T) {
	m := metrics.New()
	f, _ := frame(t, &wire.Ping{Nonce: 1, HasNonce: true})
	for range 3 {
		m.Observer().ChecksumFailed(f)
	}
	if got := value(t, m, "btcpipe_checksum_failures_total"); got != 3 {
		t.Errorf("checksum_failures_total = %v, want 3", got)
	}
}

func TestObserverDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	m := metrics.New()
	obs := m.Observer()
	known, knownBytes := frame(t, &wire.Ping{Nonce: 1, HasNonce: true})
	unknown := rawFrame(t, "mystery", nil)
	raw := &wire.Raw{Cmd: "mystery"}
	for name, f := range map[string]func(){
		"FrameIn known":   func() { obs.FrameIn(known) },
		"FrameIn unknown": func() { obs.FrameIn(unknown) },
		"FrameOut":        func() { obs.FrameOut(wire.CmdPing, knownBytes) },
		"Decoded unknown": func() { obs.Decoded(raw) },
	} {
		if allocs := testing.AllocsPerRun(1000, f); allocs != 0 {
			t.Errorf("%s allocates %v times per call, want 0", name, allocs)
		}
	}
}

func TestNamesFollowPrometheusConventions(t *testing.T) {
	m := metrics.New()
	m.Observer().FrameIn(rawFrame(t, wire.CmdPing, make([]byte, 8)))
	m.ObservePong(time.Millisecond)
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var ours []string
	for _, f := range fams {
		if strings.HasPrefix(f.GetName(), metrics.Namespace+"_") {
			ours = append(ours, f.GetName())
		}
	}
	if len(ours) < 20 {
		t.Fatalf("only %d btcpipe_ metrics: %v", len(ours), ours)
	}
	problems, err := testutil.GatherAndLint(m.Registry, ours...)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	// The Go runtime and process collectors are registered.
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if family(t, m, name) == nil {
			t.Errorf("no %s: Go and process collectors missing", name)
		}
	}
}

func TestNodeHooksCountAndChain(t *testing.T) {
	m := metrics.New()
	var called []string
	next := peer.NodeHooks{
		Hooks: peer.Hooks{
			Handshake: func(peer.Info) { called = append(called, "handshake") },
			Addrs:     func([]wire.NetAddrV2) { called = append(called, "addrs") },
			Pong:      func(time.Duration) { called = append(called, "pong") },
		},
		Connected:    func(netip.AddrPort) { called = append(called, "connected") },
		Disconnected: func(netip.AddrPort, error) { called = append(called, "disconnected") },
		Reconnect:    func(int, time.Duration) { called = append(called, "reconnect") },
	}
	h := m.NodeHooks(next)
	addr := netip.MustParseAddrPort("127.0.0.1:18444")
	h.Connected(addr)
	if got := value(t, m, "btcpipe_connected"); got != 1 {
		t.Errorf("connected = %v after Connected, want 1", got)
	}
	h.Handshake(peer.Info{Addr: addr, ConnectLatency: 2 * time.Millisecond, HandshakeLatency: 40 * time.Millisecond})
	h.Pong(3 * time.Millisecond)
	h.Pong(5 * time.Millisecond)
	h.Addrs(make([]wire.NetAddrV2, 92))
	h.Addrs(make([]wire.NetAddrV2, 8))
	h.Disconnected(addr, io.EOF)
	h.Reconnect(1, time.Second)

	for _, tc := range []struct {
		name string
		want float64
	}{
		{"btcpipe_connections_total", 1},
		{"btcpipe_connected", 0},
		{"btcpipe_disconnects_total", 1},
		{"btcpipe_reconnects_total", 1},
		{"btcpipe_peers_received_total", 100},
		{"btcpipe_handshake_duration_seconds", 1}, // sample count
		{"btcpipe_connect_duration_seconds", 1},
		{"btcpipe_ping_rtt_seconds", 2},
	} {
		if got := value(t, m, tc.name); got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, got, tc.want)
		}
	}
	hs := family(t, m, "btcpipe_handshake_duration_seconds").GetMetric()[0].GetHistogram()
	if got := hs.GetSampleSum(); got != 0.04 {
		t.Errorf("handshake_duration_seconds sum = %v, want 0.04", got)
	}
	rtt := family(t, m, "btcpipe_ping_rtt_seconds").GetMetric()[0].GetHistogram()
	if got := rtt.GetSampleSum(); got < 0.00799 || got > 0.00801 {
		t.Errorf("ping_rtt_seconds sum = %v, want 0.008", got)
	}
	want := "connected handshake pong pong addrs addrs disconnected reconnect"
	if got := strings.Join(called, " "); got != want {
		t.Errorf("chained hooks called: %q, want %q", got, want)
	}
}

// blockingHandler holds the first message it is handed until release is
// closed, so the pipeline's channels fill behind it.
type blockingHandler struct {
	release chan struct{}
	handled atomic.Int64
}

func (h *blockingHandler) Start(ctx context.Context, _ stages.Sender) error {
	<-ctx.Done()
	return ctx.Err()
}

func (h *blockingHandler) Handle(ctx context.Context, _ wire.Message, _ stages.Sender) error {
	h.handled.Add(1)
	select {
	case <-h.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestQueueDepthShowsBackPressure stalls the dispatcher and sends frames
// until the pipeline backs up: btcpipe_queue_depth must show every inbound
// channel full, and fall to zero once the pipeline is untracked.
func TestQueueDepthShowsBackPressure(t *testing.T) {
	m := metrics.New()
	ours, theirs := net.Pipe()
	h := &blockingHandler{release: make(chan struct{})}
	const depth = 4
	p, err := pipeline.New(ours, ours, ours, h, pipeline.Config{
		Options:    stages.Options{Peer: "pipe", Magic: wire.Regtest.Magic, Observer: m.Observer()},
		QueueDepth: depth,
	})
	if err != nil {
		t.Fatal(err)
	}
	untrack := m.TrackPipeline(p)
	for _, stage := range metrics.QueueStages {
		if got := value(t, m, "btcpipe_queue_depth", "stage", stage); got != 0 {
			t.Errorf("queue_depth{stage=%s} = %v before Run, want 0", stage, got)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- p.Run(ctx) }()
	// Each Write through net.Pipe is read as one chunk: one frame per
	// chunk and per batch. The feeder blocks once everything is full.
	_, ping := frame(t, &wire.Ping{Nonce: 1, HasNonce: true})
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		for range 100 {
			if _, err := theirs.Write(ping); err != nil {
				return
			}
		}
	}()

	deadline := time.Now().Add(10 * time.Second)
	for {
		full := true
		for _, stage := range []string{"chunks", "framed", "verified"} {
			if value(t, m, "btcpipe_queue_depth", "stage", stage) != depth {
				full = false
			}
		}
		if full {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queues never filled: chunks=%v framed=%v verified=%v (handled %d)",
				value(t, m, "btcpipe_queue_depth", "stage", "chunks"), value(t, m, "btcpipe_queue_depth", "stage", "framed"),
				value(t, m, "btcpipe_queue_depth", "stage", "verified"), h.handled.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := value(t, m, "btcpipe_queue_depth", "stage", "outbound"); got != 0 {
		t.Errorf("queue_depth{stage=outbound} = %v, want 0 (nothing sent)", got)
	}
	for _, stage := range metrics.QueueStages {
		if got := value(t, m, "btcpipe_queue_capacity", "stage", stage); got != depth {
			t.Errorf("queue_capacity{stage=%s} = %v, want %d", stage, got, depth)
		}
	}

	cancel()
	if err := <-runErr; !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
	theirs.Close()
	<-fed
	untrack()
	untrack() // idempotent
	for _, stage := range metrics.QueueStages {
		if got := value(t, m, "btcpipe_queue_depth", "stage", stage); got != 0 {
			t.Errorf("queue_depth{stage=%s} = %v after untrack, want 0", stage, got)
		}
		if got := value(t, m, "btcpipe_queue_capacity", "stage", stage); got != 0 {
			t.Errorf("queue_capacity{stage=%s} = %v after untrack, want 0", stage, got)
		}
	}
}

func TestCrawlCountsRecordsAndReadsStats(t *testing.T) {
	m := metrics.New()
	var next recordCounter
	sink := m.Crawl.Sink(&next)
	outcomes := map[crawler.Outcome]int{
		crawler.Reachable: 7, crawler.Refused: 3, crawler.Timeout: 2, crawler.Self: 1, crawler.NotDialled: 4,
	}
	for o, n := range outcomes {
		for range n {
			if err := sink.Record(&crawler.Record{Outcome: o}); err != nil {
				t.Fatal(err)
			}
		}
	}
	sink.Record(&crawler.Record{Outcome: "made_up"})
	if err := sink.Summary(&crawler.Summary{}); err != nil {
		t.Fatal(err)
	}
	if next.records != 18 || next.summaries != 1 {
		t.Errorf("the wrapped sink got %d records and %d summaries, want 18 and 1", next.records, next.summaries)
	}
	m.Crawl.Watch(func() crawler.Stats { return crawler.Stats{Discovered: 40, Tried: 20, InFlight: 5, Queued: 9} })
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"btcpipe_crawl_reachable_total", nil, 7},
		{"btcpipe_crawl_not_dialled_total", nil, 4},
		{"btcpipe_crawl_failures_total", []string{"class", "refused"}, 3},
		{"btcpipe_crawl_failures_total", []string{"class", "timeout"}, 2},
		{"btcpipe_crawl_failures_total", []string{"class", "self"}, 1},
		{"btcpipe_crawl_failures_total", []string{"class", "reset"}, 0},
		{"btcpipe_crawl_failures_total", []string{"class", metrics.OtherClass}, 1},
		{"btcpipe_crawl_discovered_total", nil, 40},
		{"btcpipe_crawl_tried_total", nil, 20},
		{"btcpipe_crawl_in_flight", nil, 5},
		{"btcpipe_crawl_queued", nil, 9},
	} {
		if got := value(t, m, tc.name, tc.labels...); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	// Every failure outcome of the crawler has its series from the start.
	f := family(t, m, "btcpipe_crawl_failures_total")
	want := 1 // other
	for _, o := range crawler.Outcomes {
		if o.Failed() {
			want++
		}
	}
	if got := len(f.GetMetric()); got != want {
		t.Errorf("failures_total has %d series, want %d (each failure outcome and other)", got, want)
	}
}

type recordCounter struct{ records, summaries int }

func (r *recordCounter) Record(*crawler.Record) error   { r.records++; return nil }
func (r *recordCounter) Summary(*crawler.Summary) error { r.summaries++; return nil }

func get(t *testing.T, url string) (int, string) {
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
	return resp.StatusCode, string(b)
}

func TestHandler(t *testing.T) {
	m := metrics.New()
	var ready atomic.Bool
	srv := httptest.NewServer(metrics.Handler(m.Registry, m.Registry, ready.Load))
	defer srv.Close()
	defer srv.Client().CloseIdleConnections()

	if code, body := get(t, srv.URL+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q, want 200 \"ok\\n\"", code, body)
	}
	if code, body := get(t, srv.URL+"/readyz"); code != 503 || body != "not ready\n" {
		t.Errorf("/readyz before ready = %d %q, want 503 \"not ready\\n\"", code, body)
	}
	ready.Store(true)
	if code, body := get(t, srv.URL+"/readyz"); code != 200 || body != "ready\n" {
		t.Errorf("/readyz when ready = %d %q, want 200 \"ready\\n\"", code, body)
	}
	ready.Store(false)
	if code, _ := get(t, srv.URL+"/readyz"); code != 503 {
		t.Errorf("/readyz after ready went false = %d, want 503", code)
	}
	code, body := get(t, srv.URL+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	for _, want := range []string{
		`btcpipe_frames_total{command="version",direction="in"} 0`,
		`btcpipe_queue_depth{stage="outbound"} 0`,
		"# TYPE btcpipe_ping_rtt_seconds histogram",
		"go_goroutines ",
		"promhttp_metric_handler_requests_total",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if code, _ := get(t, srv.URL+"/nothing"); code != 404 {
		t.Errorf("/nothing = %d, want 404", code)
	}
	resp, err := http.Post(srv.URL+"/metrics", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics = %d, want 405", resp.StatusCode)
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestServerShutsDownWithContext(t *testing.T) {
	m := metrics.New()
	srv, err := m.Listen("127.0.0.1:0", func() bool { return true }, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	base := "http://" + srv.Addr().String()
	if code, _ := get(t, base+"/readyz"); code != 200 {
		t.Fatalf("/readyz = %d, want 200", code)
	}
	// An idle keep-alive connection must not hold the shutdown up.
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve = %v after cancel, want nil", err)
		}
	case <-time.After(2 * metrics.ShutdownTimeout):
		t.Fatal("Serve still running after its context ended")
	}
	http.DefaultClient.CloseIdleConnections()
	if c, err := net.Dial("tcp", srv.Addr().String()); err == nil {
		c.Close()
		t.Error("still accepting connections after shutdown")
	}
}

func TestListenErrorNamesTheAddress(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = metrics.New().Listen(l.Addr().String(), nil, nil)
	if err == nil || !strings.Contains(err.Error(), l.Addr().String()) {
		t.Errorf("Listen on a busy port = %v, want an error naming %s", err, l.Addr())
	}
}

func BenchmarkObserver(b *testing.B) {
	m := metrics.New()
	obs := m.Observer()
	f, raw := frame(b, &wire.Ping{Nonce: 1, HasNonce: true})
	b.Run("FrameIn", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			obs.FrameIn(f)
		}
	})
	b.Run("FrameOut", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			obs.FrameOut(wire.CmdPing, raw)
		}
	})
	b.Run("FrameInParallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(raw)))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				obs.FrameIn(f)
			}
		})
	})
}
