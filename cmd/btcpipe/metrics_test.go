package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"

	"github.com/btcpipe/btcpipe/crawler"
	"github.com/btcpipe/btcpipe/internal/btcdtest"
	"github.com/btcpipe/btcpipe/internal/simnet"
	"github.com/btcpipe/btcpipe/report"
)

// proc is a btcpipe process started by a test, with its stdout collected
// line by line.
type proc struct {
	cmd    *exec.Cmd
	stderr strings.Builder
	done   chan struct{} // closed when stdout is drained

	mu    sync.Mutex
	lines []string
	grew  chan struct{} // closed and replaced on every new line
}

// startBtcpipe runs the built binary with env in dir.
func startBtcpipe(t *testing.T, dir string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(binary(t), args...), done: make(chan struct{}), grew: make(chan struct{})}
	p.cmd.Env = cleanEnv(env...)
	p.cmd.Dir = dir
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
	})
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 4<<20) // debug lines carry hex dumps
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			close(p.grew)
			p.grew = make(chan struct{})
			p.mu.Unlock()
		}
	}()
	return p
}

// waitLine waits for a stdout line that is JSON with msg containing substr
// and returns it decoded.
func (p *proc) waitLine(t *testing.T, substr string, timeout time.Duration) map[string]any {
	t.Helper()
	deadline := time.After(timeout)
	seen := 0
	for {
		p.mu.Lock()
		lines, grew := p.lines, p.grew
		p.mu.Unlock()
		for ; seen < len(lines); seen++ {
			var m map[string]any
			if json.Unmarshal([]byte(lines[seen]), &m) == nil {
				if msg, _ := m["msg"].(string); strings.Contains(msg, substr) {
					return m
				}
			}
		}
		select {
		case <-grew:
		case <-p.done:
			t.Fatalf("btcpipe ended without logging %q; stderr: %s", substr, p.stderr.String())
		case <-deadline:
			t.Fatalf("no log line with %q within %v", substr, timeout)
		}
	}
}

// stop sends SIGTERM and requires exit status 0 within 2 s.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { <-p.done; exited <- p.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("btcpipe exited with %v after SIGTERM, want status 0; stderr: %s", err, p.stderr.String())
		}
	case <-time.After(2 * time.Second):
		t.Fatal("btcpipe still running 2s after SIGTERM")
	}
}

// scrape fetches and parses /metrics.
func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

// sample returns the value of name{labels} (a histogram's sample count), or
// -1 when there is no such series.
func sample(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, s := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range s.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		if len(have) != len(labels)/2 {
			continue
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
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
		case s.Untyped != nil:
			return s.Untyped.GetValue()
		}
	}
	return -1
}

func status(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// eventually polls cond until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMetricsAndHealthAgainstBtcd runs the built binary against a real
// regtest btcd that knows 400 addresses, with metrics on, JSON logs at
// debug level and a 200 ms ping interval, in an empty directory. It scrapes
// /metrics and checks the counters against what the protocol must have
// done, follows /readyz through the handshake and btcd's stop, then stops
// btcpipe with SIGTERM (status 0 within 2 s), and finally checks every
// stdout line is a JSON event with the stable field names, and that nothing
// was written to the directory.
func TestMetricsAndHealthAgainstBtcd(t *testing.T) {
	b := btcdtest.Start(t, btcdtest.Options{Network: btcdtest.Regtest})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := btcdtest.SeedAddrs(ctx, b.Addr, b.Network, btcdtest.RoutableAddrs(400, 1)); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := startBtcpipe(t, dir, []string{
		"BTCPIPE_NETWORK=regtest", "BTCPIPE_PEER=" + b.Addr.String(),
		"BTCPIPE_METRICS_ADDR=127.0.0.1:0", "BTCPIPE_PING_INTERVAL=200ms",
		"BTCPIPE_BACKOFF_MIN=50ms", "BTCPIPE_BACKOFF_MAX=200ms",
		"BTCPIPE_LOG_FORMAT=json", "BTCPIPE_LOG_LEVEL=debug",
	}, "node")
	serving := p.waitLine(t, "serving /metrics", 10*time.Second)
	addr, _ := serving["addr"].(string)
	if addr == "" {
		t.Fatalf("metrics log line has no addr field: %v", serving)
	}
	base := "http://" + addr
	defer http.DefaultClient.CloseIdleConnections()

	if code := status(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz = %d, want 200", code)
	}
	// Ready once the handshake completes.
	eventually(t, 10*time.Second, "/readyz 200 after the handshake", func() bool { return status(t, base+"/readyz") == 200 })
	p.waitLine(t, "handshake complete", time.Second)

	// Addresses and a few pongs arrive.
	var fams map[string]*dto.MetricFamily
	eventually(t, 10*time.Second, "peers received and 3 pongs", func() bool {
		fams = scrape(t, base)
		return sample(fams, "btcpipe_peers_received_total") > 0 && sample(fams, "btcpipe_ping_rtt_seconds") >= 3
	})
	frames := func(cmd, dir string) float64 {
		return sample(fams, "btcpipe_frames_total", "command", cmd, "direction", dir)
	}
	byteCount := func(cmd, dir string) float64 {
		return sample(fams, "btcpipe_bytes_total", "command", cmd, "direction", dir)
	}
	for _, tc := range []struct {
		what      string
		got, want float64
	}{
		{"frames in version", frames("version", "in"), 1},
		{"frames in verack", frames("verack", "in"), 1},
		{"frames out version", frames("version", "out"), 1},
		{"frames out verack", frames("verack", "out"), 1},
		{"frames out sendaddrv2", frames("sendaddrv2", "out"), 1},
		{"frames out getaddr", frames("getaddr", "out"), 1},
		{"frames in other", frames("other", "in"), 0},
		{"handshake histogram count", sample(fams, "btcpipe_handshake_duration_seconds"), 1},
		{"connect histogram count", sample(fams, "btcpipe_connect_duration_seconds"), 1},
		{"connections", sample(fams, "btcpipe_connections_total"), 1},
		{"connected", sample(fams, "btcpipe_connected"), 1},
		{"ready", sample(fams, "btcpipe_ready"), 1},
		{"checksum failures", sample(fams, "btcpipe_checksum_failures_total"), 0},
		{"unknown commands", sample(fams, "btcpipe_unknown_commands_total"), 0},
		{"reconnects", sample(fams, "btcpipe_reconnects_total"), 0},
		// btcd answers getaddr with floor(400 × 23 / 100) of the 400
		// it was taught (see internal/btcdtest), all new to us.
		{"peers received", sample(fams, "btcpipe_peers_received_total"), 92},
		{"peers unique", sample(fams, "btcpipe_peers_unique"), 92},
		// btcd v0.26.2's version frame is 137 bytes (testdata/btcd-regtest.rec).
		{"version bytes in", byteCount("version", "in"), 137},
		{"verack bytes in", byteCount("verack", "in"), 24},
		{"getaddr bytes out", byteCount("getaddr", "out"), 24},
		{"ping bytes out", byteCount("ping", "out"), 32 * frames("ping", "out")},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.what, tc.got, tc.want)
		}
	}
	if got := frames("addr", "in") + frames("addrv2", "in"); got < 1 {
		t.Errorf("addr+addrv2 frames in = %v, want ≥ 1", got)
	}
	if pings, pongs := frames("ping", "out"), frames("pong", "in"); pongs < 3 || pings < pongs {
		t.Errorf("pings out %v, pongs in %v: want ≥ 3 pongs, no more than pings", pings, pongs)
	}
	for _, stage := range []string{"chunks", "framed", "verified", "outbound"} {
		if got := sample(fams, "btcpipe_queue_depth", "stage", stage); got < 0 {
			t.Errorf("no btcpipe_queue_depth{stage=%q}", stage)
		}
		if got := sample(fams, "btcpipe_queue_capacity", "stage", stage); got != 16 {
			t.Errorf("btcpipe_queue_capacity{stage=%q} = %v, want 16 (BTCPIPE_QUEUE_DEPTH's default)", stage, got)
		}
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if sample(fams, name) <= 0 {
			t.Errorf("%s missing: Go or process collector not registered", name)
		}
	}

	// Not ready once btcd is gone; reconnect attempts are counted; still
	// alive.
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "/readyz 503 after btcd stopped", func() bool { return status(t, base+"/readyz") == 503 })
	eventually(t, 5*time.Second, "reconnects counted", func() bool {
		fams = scrape(t, base)
		return sample(fams, "btcpipe_reconnects_total") >= 2
	})
	if got := sample(fams, "btcpipe_ready"); got != 0 {
		t.Errorf("btcpipe_ready = %v after btcd stopped, want 0", got)
	}
	if got := sample(fams, "btcpipe_connected"); got != 0 {
		t.Errorf("btcpipe_connected = %v after btcd stopped, want 0", got)
	}
	if code := status(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz = %d while reconnecting, want 200", code)
	}
	http.DefaultClient.CloseIdleConnections()

	p.stop(t)
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("metrics server still answering after exit")
	}

	checkJSONLog(t, p.lines, fams)
	if stderr := p.stderr.String(); stderr != "" {
		t.Errorf("stderr = %q, want nothing (logs go to stdout)", stderr)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("btcpipe wrote %s in its working directory; nothing should be written unless asked", e.Name())
	}
}

// checkJSONLog requires every line to be one JSON event with level, msg and
// time, the stable field names (peer, command, stage, bytes, err) wherever
// they apply, and the address counts of the log to agree with the metrics.
func checkJSONLog(t *testing.T, lines []string, fams map[string]*dto.MetricFamily) {
	t.Helper()
	if len(lines) < 10 {
		t.Fatalf("only %d log lines", len(lines))
	}
	var (
		framesIn, framesOut, withPeer, warnings int
		peersLogged                             float64
	)
	for i, line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("line %d is not JSON: %q", i+1, line)
			continue
		}
		for _, k := range []string{"level", "msg", "time"} {
			if _, ok := m[k].(string); !ok {
				t.Errorf("line %d lacks %s: %q", i+1, k, line)
			}
		}
		// logrus's default key for errors is "error"; ours is "err".
		if _, ok := m["error"]; ok {
			t.Errorf("line %d has an \"error\" field, want \"err\": %q", i+1, line)
		}
		if e, ok := m["err"]; ok {
			if s, _ := e.(string); s == "" {
				t.Errorf("line %d: err is %v, want a non-empty string", i+1, e)
			}
		}
		if pv, ok := m["peer"]; ok {
			if s, _ := pv.(string); !strings.HasPrefix(s, "127.0.0.1:") {
				t.Errorf("line %d: peer = %v, want the btcd address", i+1, pv)
			}
			withPeer++
		}
		msg, _ := m["msg"].(string)
		if dir, _ := m["dir"].(string); dir == "in" || dir == "out" {
			cmd, _ := m["command"].(string)
			n, ok := m["bytes"].(float64)
			if cmd == "" || !ok || n < 24 {
				t.Errorf("line %d: a frame dump without command or bytes ≥ 24: %q", i+1, line)
			}
			if _, ok := m["peer"]; !ok {
				t.Errorf("line %d: a frame dump without peer", i+1)
			}
			if dir == "in" {
				framesIn++
			} else {
				framesOut++
			}
		}
		if strings.HasPrefix(msg, "received ") && strings.Contains(msg, " peers") {
			n, _ := m["peers"].(float64)
			peersLogged += n
		}
		if m["level"] == "warning" && strings.HasPrefix(msg, "connection lost") {
			warnings++
			if _, ok := m["err"]; !ok {
				t.Errorf("line %d: a lost connection without err: %q", i+1, line)
			}
		}
	}
	if withPeer == 0 {
		t.Error("no line has a peer field")
	}
	if warnings == 0 {
		t.Error("no \"connection lost\" warning after btcd stopped")
	}
	// The debug dumps and the frame counters see the same frames (the
	// last scrape came after the connection ended).
	var wantIn, wantOut float64
	for _, s := range fams["btcpipe_frames_total"].GetMetric() {
		for _, l := range s.GetLabel() {
			if l.GetName() == "direction" && l.GetValue() == "in" {
				wantIn += s.GetCounter().GetValue()
			}
			if l.GetName() == "direction" && l.GetValue() == "out" {
				wantOut += s.GetCounter().GetValue()
			}
		}
	}
	if float64(framesIn) != wantIn || float64(framesOut) != wantOut {
		t.Errorf("debug log shows %d frames in and %d out; metrics count %v and %v", framesIn, framesOut, wantIn, wantOut)
	}
	if want := sample(fams, "btcpipe_peers_received_total"); peersLogged != want {
		t.Errorf("log lines report %v peers received, metrics %v", peersLogged, want)
	}
}

// TestHealthcheck runs the healthcheck command in-process against a server
// whose answers the test controls.
func TestHealthcheck(t *testing.T) {
	ignore := goleak.IgnoreCurrent() // checked after every cleanup
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	var (
		mu   sync.Mutex
		code = map[string]int{"/readyz": 503, "/healthz": 200}
		hits []string
	)
	srv := newTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		c, ok := code[r.URL.Path]
		hits = append(hits, r.URL.Path)
		mu.Unlock()
		if !ok {
			c = 404
		}
		w.WriteHeader(c)
		fmt.Fprintln(w, http.StatusText(c))
	})
	hostport := strings.TrimPrefix(srv, "http://")
	_, port, _ := strings.Cut(hostport, ":")

	for _, tc := range []struct {
		name  string
		env   []string
		args  []string
		ready int
		want  int
		hit   string
	}{
		{"not ready", []string{"BTCPIPE_HEALTHCHECK_URL=" + srv}, nil, 503, exitFailed, "/readyz"},
		{"ready", []string{"BTCPIPE_HEALTHCHECK_URL=" + srv}, nil, 200, exitOK, "/readyz"},
		{"readyz by name", []string{"BTCPIPE_HEALTHCHECK_URL=" + srv + "/"}, []string{"readyz"}, 200, exitOK, "/readyz"},
		{"healthz while not ready", []string{"BTCPIPE_HEALTHCHECK_URL=" + srv}, []string{"healthz"}, 503, exitOK, "/healthz"},
		{"from metrics addr, any interface", []string{"BTCPIPE_METRICS_ADDR=:" + port}, nil, 200, exitOK, "/readyz"},
		{"from metrics addr, loopback", []string{"BTCPIPE_METRICS_ADDR=" + hostport}, nil, 503, exitFailed, "/readyz"},
		{"nothing configured", nil, nil, 200, exitUsage, ""},
		{"port 0", []string{"BTCPIPE_METRICS_ADDR=127.0.0.1:0"}, nil, 200, exitUsage, ""},
		{"bad argument", []string{"BTCPIPE_HEALTHCHECK_URL=" + srv}, []string{"metrics"}, 200, exitUsage, ""},
		{"bad url", []string{"BTCPIPE_HEALTHCHECK_URL=ftp://x"}, nil, 200, exitUsage, ""},
		{"nobody listening", []string{"BTCPIPE_HEALTHCHECK_URL=http://127.0.0.1:1"}, nil, 200, exitFailed, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"BTCPIPE_HEALTHCHECK_URL", "BTCPIPE_METRICS_ADDR"} {
				t.Setenv(k, "")
				os.Unsetenv(k)
			}
			for _, kv := range tc.env {
				k, v, _ := strings.Cut(kv, "=")
				t.Setenv(k, v)
			}
			mu.Lock()
			code["/readyz"] = tc.ready
			hits = nil
			mu.Unlock()
			var stdout, stderr strings.Builder
			got := run(append([]string{"healthcheck"}, tc.args...), &stdout, &stderr)
			if got != tc.want {
				t.Errorf("exit %d, want %d; stdout %q, stderr %q", got, tc.want, stdout.String(), stderr.String())
			}
			mu.Lock()
			gotHits := strings.Join(hits, ",")
			mu.Unlock()
			if gotHits != tc.hit {
				t.Errorf("asked for %q, want %q", gotHits, tc.hit)
			}
			out := stdout.String() + stderr.String()
			if lines := strings.Count(out, "\n"); lines != 1 {
				t.Errorf("printed %d lines, want 1: %q", lines, out)
			}
			if tc.want == exitOK && stdout.Len() == 0 {
				t.Error("nothing on stdout when healthy")
			}
		})
	}
}

func listenLoopback() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

// newTestServer serves h on loopback until the test ends.
func newTestServer(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: time.Second}
	ln, err := listenLoopback()
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

func TestHealthcheckBase(t *testing.T) {
	for _, tc := range []struct {
		url, addr string
		want      string
		err       bool
	}{
		{url: "http://10.0.0.1:9090/", want: "http://10.0.0.1:9090"},
		{url: "http://h:1", addr: ":9090", want: "http://h:1"},
		{addr: ":9090", want: "http://127.0.0.1:9090"},
		{addr: "0.0.0.0:9090", want: "http://127.0.0.1:9090"},
		{addr: "[::]:9090", want: "http://[::1]:9090"},
		{addr: "[::1]:9090", want: "http://[::1]:9090"},
		{addr: "localhost:9090", want: "http://localhost:9090"},
		{addr: "", err: true},
		{addr: ":0", err: true},
	} {
		got, err := healthcheckBase(HealthcheckConfig{URL: tc.url}, MetricsConfig{Addr: tc.addr})
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("healthcheckBase(url %q, addr %q) = %q, %v; want %q, error %v", tc.url, tc.addr, got, err, tc.want, tc.err)
		}
	}
}

func TestBadMetricsAddrExitsTwo(t *testing.T) {
	for _, addr := range []string{"9090", "127.0.0.1:http", "127.0.0.1:70000"} {
		cmd := exec.Command(binary(t), "node")
		cmd.Env = cleanEnv("BTCPIPE_NETWORK=regtest", "BTCPIPE_METRICS_ADDR="+addr)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitUsage {
			t.Errorf("BTCPIPE_METRICS_ADDR=%s: exit = %v, want status 2", addr, err)
		}
		if !strings.Contains(stderr.String(), "BTCPIPE_METRICS_ADDR") {
			t.Errorf("BTCPIPE_METRICS_ADDR=%s: stderr %q does not name the variable", addr, stderr.String())
		}
	}
}

// TestBusyMetricsPortFails: a port that cannot be had is an error at start,
// not a node running without its metrics.
func TestBusyMetricsPortFails(t *testing.T) {
	ln, err := listenLoopback()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cmd := exec.Command(binary(t), "node")
	cmd.Env = cleanEnv("BTCPIPE_NETWORK=regtest", "BTCPIPE_PEER=127.0.0.1:1", "BTCPIPE_LOG_FORMAT=json",
		"BTCPIPE_METRICS_ADDR="+ln.Addr().String())
	var stdout strings.Builder
	cmd.Stdout = &stdout
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatal("btcpipe kept running with its metrics port taken")
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitFailed {
		t.Errorf("exit = %v, want status 1", err)
	}
	if !strings.Contains(stdout.String(), `"err":`) || !strings.Contains(stdout.String(), "BTCPIPE_METRICS_ADDR") {
		t.Errorf("stdout = %q, want a JSON error naming BTCPIPE_METRICS_ADDR", stdout.String())
	}
}

// lockedBuffer is a bytes.Buffer safe to write from the command and read
// from the test at once.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// logAddr waits for the JSON log line announcing the metrics server and
// returns its address.
func logAddr(t *testing.T, log *lockedBuffer, done <-chan int) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		for _, line := range strings.Split(log.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && strings.HasPrefix(fmt.Sprint(m["msg"]), "serving /metrics") {
				return m["addr"].(string)
			}
		}
		select {
		case code := <-done:
			t.Fatalf("crawl exited %d before serving metrics; log:\n%s", code, log.String())
		case <-deadline:
			t.Fatalf("no metrics server in the log:\n%s", log.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestCrawlMetricsAndReport runs `btcpipe crawl` in process against a
// simulated network with BTCPIPE_METRICS_ADDR and BTCPIPE_CRAWL_REPORT:
// while stalling nodes keep it running, /readyz is 200 and the crawl
// counters move; at the end the report is written, a well-formed page with
// one chart per section whose record count matches the JSON lines, and the
// server is gone.
func TestCrawlMetricsAndReport(t *testing.T) {
	ignore := goleak.IgnoreCurrent() // checked after every cleanup
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	s, g := newCrawlSim(t, map[simnet.Kind]int{simnet.Good: 30, simnet.Refused: 3, simnet.Stall: 3})
	dir := t.TempDir()
	path := filepath.Join(dir, "report.html")
	setenv(t, crawlEnv(s, g, "BTCPIPE_CRAWL_OUT=", "BTCPIPE_LOG_FORMAT=json", "BTCPIPE_METRICS_ADDR=127.0.0.1:0",
		"BTCPIPE_CRAWL_HANDSHAKE_TIMEOUT=1500ms", "BTCPIPE_CRAWL_REPORT="+path))
	var stdout, stderr lockedBuffer
	done := make(chan int, 1)
	go func() { done <- run([]string{"crawl"}, &stdout, &stderr) }()
	base := "http://" + logAddr(t, &stderr, done)
	defer http.DefaultClient.CloseIdleConnections()

	// The stalling nodes hold the crawl open for the handshake timeout.
	var fams map[string]*dto.MetricFamily
	eventually(t, 10*time.Second, "a stalled attempt in flight", func() bool {
		fams = scrape(t, base)
		return sample(fams, "btcpipe_crawl_in_flight") >= 1 && sample(fams, "btcpipe_crawl_reachable_total") >= 1
	})
	if code := status(t, base+"/readyz"); code != 200 {
		t.Errorf("/readyz = %d while crawling, want 200", code)
	}
	tried, discovered := sample(fams, "btcpipe_crawl_tried_total"), sample(fams, "btcpipe_crawl_discovered_total")
	var failed float64
	for _, m := range fams["btcpipe_crawl_failures_total"].GetMetric() {
		failed += m.GetCounter().GetValue()
	}
	finished := sample(fams, "btcpipe_crawl_reachable_total") + failed
	// One scrape reads the counters one after another, not as one snapshot:
	// an attempt finishing meanwhile can be both in flight and finished, so
	// each is checked against tried on its own.
	if tried < 1 || discovered < tried || finished > tried || sample(fams, "btcpipe_crawl_in_flight") > tried {
		t.Errorf("tried %v, discovered %v, finished %v, in flight %v: inconsistent", tried, discovered, finished, sample(fams, "btcpipe_crawl_in_flight"))
	}
	http.DefaultClient.CloseIdleConnections()

	var code int
	select {
	case code = <-done:
	case <-time.After(time.Minute):
		t.Fatal("crawl still running after a minute")
	}
	if code != exitOK {
		t.Fatalf("crawl exited %d; log:\n%s", code, stderr.String())
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("metrics server still answering after the crawl")
	}
	recs, sum := parseCrawlOutput(t, []byte(stdout.String()))
	if sum == nil || sum.ByOutcome[crawler.Timeout] != 3 || sum.ByOutcome[crawler.Reachable] != 30 {
		t.Fatalf("summary %+v", sum)
	}
	page, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("no report: %v", err)
	}
	checkReportPage(t, page, len(recs))
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("the report's directory holds %d files, want only the report (no temporary left)", len(entries))
	}
	if !strings.Contains(stderr.String(), "wrote the crawl report") {
		t.Error("the log does not say where the report went")
	}
}

// checkReportPage checks a report page: well-formed markup, no script, one
// SVG per section, and the footer's record count.
func checkReportPage(t *testing.T, page []byte, records int) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(page))
	sections, svgs, inSection := 0, 0, false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the report is not well formed: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			switch tok.Name.Local {
			case "section":
				sections++
				inSection = true
			case "svg":
				if !inSection {
					t.Error("an svg outside a section")
				}
				svgs++
			case "script":
				t.Error("the report has a script")
			}
		case xml.EndElement:
			if tok.Name.Local == "section" {
				inSection = false
			}
		}
	}
	if sections != len(report.Sections) || svgs != sections {
		t.Errorf("%d sections and %d charts, want %d of each", sections, svgs, len(report.Sections))
	}
	if want := fmt.Sprintf("%d node records.", records); !bytes.Contains(page, []byte(want)) {
		t.Errorf("the report does not say %q", want)
	}
}

// TestCrawlReportInterrupted: a crawl stopped by its context still writes
// its report, marked interrupted.
func TestCrawlReportInterrupted(t *testing.T) {
	ignore := goleak.IgnoreCurrent() // checked after every cleanup
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	s, g := newCrawlSim(t, map[simnet.Kind]int{simnet.Good: 10, simnet.Stall: 5})
	path := filepath.Join(t.TempDir(), "report.html")
	setenv(t, crawlEnv(s, g, "BTCPIPE_CRAWL_OUT=", "BTCPIPE_CRAWL_HANDSHAKE_TIMEOUT=1m", "BTCPIPE_CRAWL_REPORT="+path))
	st := defaultCrawlSettings()
	if err := load(&st); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr lockedBuffer
	e := &env{log: newLogger(st.Config, &stderr), stdout: &stdout, stderr: &stderr}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() { done <- crawl(ctx, e, &st, nil) }()
	// Wait for the ten good nodes; the stalling ones hold on for a minute.
	eventually(t, 20*time.Second, "ten reachable records", func() bool {
		return strings.Count(stdout.String(), `"outcome":"reachable"`) == 10
	})
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("interrupted crawl exited %d: %s", code, stderr.String())
	}
	page, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("no report after an interrupted crawl: %v", err)
	}
	recs, sum := parseCrawlOutput(t, []byte(stdout.String()))
	if sum == nil || !sum.Interrupted {
		t.Fatalf("summary %+v, want interrupted", sum)
	}
	checkReportPage(t, page, len(recs))
	if !bytes.Contains(page, []byte(`<span class="badge">interrupted</span>`)) {
		t.Error("the report of an interrupted crawl does not say so")
	}
}

// TestCrawlReportBadPath: a report that cannot be written fails before the
// crawl starts.
func TestCrawlReportBadPath(t *testing.T) {
	for _, path := range []string{filepath.Join(t.TempDir(), "missing", "r.html"), t.TempDir()} {
		t.Setenv("BTCPIPE_NETWORK", "regtest")
		t.Setenv("BTCPIPE_SEEDS", "127.0.0.1:1")
		t.Setenv("BTCPIPE_CRAWL_REPORT", path)
		var stdout, stderr bytes.Buffer
		if code := run([]string{"crawl"}, &stdout, &stderr); code != exitFailed {
			t.Errorf("BTCPIPE_CRAWL_REPORT=%s: exit %d, want 1", path, code)
		}
		if stdout.Len() != 0 {
			t.Errorf("BTCPIPE_CRAWL_REPORT=%s: the crawl ran: %q", path, stdout.String())
		}
		if !strings.Contains(stderr.String(), "BTCPIPE_CRAWL_REPORT") {
			t.Errorf("BTCPIPE_CRAWL_REPORT=%s: the error does not name the variable: %s", path, stderr.String())
		}
	}
}

// TestDockerfile checks what no Docker engine here can: the image builds a
// static binary, runs it as non-root from a distroless or scratch base, its
// HEALTHCHECK and ENTRYPOINT name the binary it copies (exec form, no
// shell), and every BTCPIPE_ variable it sets is one btcpipe reads.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	// Join continuation lines, drop comments.
	var lines []string
	for _, l := range strings.Split(strings.ReplaceAll(string(b), "\\\n", " "), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	var help bytes.Buffer
	run([]string{"help"}, &help, io.Discard)
	var froms []string
	var user, entry, health, copyDst string
	cgoOff := false
	for _, l := range lines {
		instr, rest, _ := strings.Cut(l, " ")
		switch strings.ToUpper(instr) {
		case "FROM":
			froms = append(froms, rest)
		case "USER":
			user = rest
		case "ENTRYPOINT":
			entry = rest
		case "HEALTHCHECK":
			health = rest
		case "COPY":
			if f := strings.Fields(rest); strings.HasPrefix(f[0], "--from=") {
				copyDst = f[len(f)-1]
			}
		case "RUN":
			if strings.Contains(rest, "CGO_ENABLED=0") && strings.Contains(rest, "go build") {
				cgoOff = true
			}
		case "ENV":
			for _, kv := range strings.Fields(rest) {
				k, _, _ := strings.Cut(kv, "=")
				if strings.HasPrefix(k, "BTCPIPE_") && !strings.Contains(help.String(), k+" ") {
					t.Errorf("the image sets %s, which btcpipe does not read", k)
				}
			}
		}
	}
	if !cgoOff {
		t.Error("no CGO_ENABLED=0 go build: the binary would not be static")
	}
	if len(froms) < 2 {
		t.Fatalf("FROM lines %v: want a multi-stage build", froms)
	}
	if final := froms[len(froms)-1]; !strings.HasPrefix(final, "gcr.io/distroless/static") && final != "scratch" {
		t.Errorf("final stage FROM %s: want distroless static or scratch", final)
	}
	if user == "" || user == "root" || strings.HasPrefix(user, "0") {
		t.Errorf("USER %q: want a non-root user", user)
	}
	if want := fmt.Sprintf(`["%s"]`, copyDst); copyDst == "" || entry != want {
		t.Errorf("ENTRYPOINT %s, want %s (the copied binary, exec form)", entry, want)
	}
	if want := fmt.Sprintf(`CMD ["%s", "healthcheck"]`, copyDst); !strings.HasSuffix(health, want) {
		t.Errorf("HEALTHCHECK %s: want it to end in %s (exec form, no shell)", health, want)
	}
	ignore, err := os.ReadFile("../../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".git", "bin/"} {
		if !slices.Contains(strings.Fields(string(ignore)), want) {
			t.Errorf(".dockerignore does not exclude %s", want)
		}
	}
}
