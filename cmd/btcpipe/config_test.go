package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/btcpipe/btcpipe/crawler"
	"github.com/btcpipe/btcpipe/internal/fakepeer"
	"github.com/btcpipe/btcpipe/peer"
	"github.com/btcpipe/btcpipe/pipeline"
	"github.com/btcpipe/btcpipe/stages"
	"github.com/btcpipe/btcpipe/wire"
)

// clearEnv unsets every BTCPIPE_ variable for the test (restored after).
func clearEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, envPrefix+"_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
}

// TestDefaultsComeFromThePackages: with no variable set, every setting is
// the default of the package that owns it.
func TestDefaultsComeFromThePackages(t *testing.T) {
	clearEnv(t)
	st := defaultCrawlSettings()
	if err := load(&st); err != nil {
		t.Fatalf("the defaults do not load: %v", err)
	}
	sess := peer.DefaultConfig(&wire.Mainnet)
	opts := stages.Options{}.Defaults()
	c, cc := st.Config, st.CrawlConfig
	type check struct {
		name      string
		got, want any
	}
	for _, ck := range []check{
		{"NETWORK", c.Network, wire.Mainnet.Name},
		{"USER_AGENT", c.UserAgent, sess.UserAgent},
		{"MIN_PROTOCOL", c.MinProtocol, sess.MinProtocol},
		{"SEND_ADDRV2", c.SendAddrV2, sess.SendAddrV2},
		{"HANDSHAKE_TIMEOUT", c.HandshakeTimeout, sess.HandshakeTimeout},
		{"PING_INTERVAL", c.PingInterval, sess.PingInterval},
		{"PING_TIMEOUT", c.PingTimeout, sess.PingTimeout},
		{"DIAL_TIMEOUT", c.DialTimeout, peer.DefaultDialTimeout},
		{"WRITE_TIMEOUT", c.WriteTimeout, opts.WriteTimeout},
		{"BACKOFF_MIN", c.BackoffMin, peer.DefaultBackoffMin},
		{"BACKOFF_MAX", c.BackoffMax, peer.DefaultBackoffMax},
		{"MAX_ADDRS", c.MaxAddrs, peer.DefaultMaxAddrs},
		{"READ_BUFFER", c.ReadBuffer, opts.ReadSize},
		{"TRANSPORT", c.Transport, peer.DefaultTransport},
		{"FRAMER", c.Framer, ""}, // the transport's: the registry's default
		{"VERIFIER", c.Verifier, ""},
		{"CRAWL_CONCURRENCY", cc.Concurrency, crawler.DefaultConcurrency},
		{"CRAWL_CONNECT_TIMEOUT", cc.ConnectTimeout, crawler.DefaultConnectTimeout},
		{"CRAWL_HANDSHAKE_TIMEOUT", cc.HandshakeTimeout, crawler.DefaultHandshakeTimeout},
		{"CRAWL_GETADDR_TIMEOUT", cc.GetAddrTimeout, crawler.DefaultGetAddrTimeout},
		{"CRAWL_QUIET", cc.Quiet, crawler.DefaultQuiet},
		{"CRAWL_MAX_NODES", cc.MaxNodes, crawler.DefaultMaxNodes},
	} {
		if ck.got != ck.want {
			t.Errorf("BTCPIPE_%s defaults to %v, want the package's %v", ck.name, ck.got, ck.want)
		}
	}
	// What the node is given: NewNode would fill the same.
	nc, reach, err := nodeConfig(&c)
	if err != nil {
		t.Fatal(err)
	}
	reach.Close()
	if nc.Session != peer.DefaultConfig(&wire.Mainnet) {
		t.Errorf("node session = %+v, want peer.DefaultConfig %+v", nc.Session, peer.DefaultConfig(&wire.Mainnet))
	}
}

// TestHelpShowsThePackageDefaults: help prints the defaults from the
// packages, not from copied literals.
func TestHelpShowsThePackageDefaults(t *testing.T) {
	rows := map[string]usageRow{}
	for _, cmd := range commands {
		for _, r := range usageRows(cmd.settings()) {
			rows[r.key] = r
		}
	}
	sess := peer.DefaultConfig(&wire.Mainnet)
	for key, want := range map[string]string{
		"BTCPIPE_HANDSHAKE_TIMEOUT":       shortDuration(sess.HandshakeTimeout),
		"BTCPIPE_PING_INTERVAL":           shortDuration(sess.PingInterval),
		"BTCPIPE_DIAL_TIMEOUT":            shortDuration(peer.DefaultDialTimeout),
		"BTCPIPE_CRAWL_CONCURRENCY":       fmt.Sprint(crawler.DefaultConcurrency),
		"BTCPIPE_CRAWL_QUIET":             shortDuration(crawler.DefaultQuiet),
		"BTCPIPE_HEALTHCHECK_TIMEOUT":     shortDuration(defaultHealthcheckTimeout),
		"BTCPIPE_TRANSPORT":               peer.DefaultTransport,
		"BTCPIPE_READ_BUFFER":             fmt.Sprint(stages.Options{}.Defaults().ReadSize),
		"BTCPIPE_CRAWL_PROGRESS_INTERVAL": shortDuration(defaultCrawlProgressInterval),
	} {
		if got := rows[key].def; got != want {
			t.Errorf("help shows %s default %q, want %q", key, got, want)
		}
	}
	if got := shortDuration(2 * time.Minute); got != "2m" {
		t.Errorf("shortDuration(2m) = %q", got)
	}
	var out strings.Builder
	printUsage(&out)
	for _, name := range slices.Concat(pipeline.DefaultStages.Framers.Names(), pipeline.DefaultStages.Verifiers.Names(),
		pipeline.DefaultStages.Writers.Names(), pipeline.DefaultStages.Readers.Names(), pipeline.DefaultStages.Dispatchers.Names()) {
		if !strings.Contains(out.String(), name) {
			t.Errorf("help does not list the stage %q", name)
		}
	}
	seen := map[string]int{}
	for _, l := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(l); len(f) > 0 && strings.HasPrefix(f[0], envPrefix+"_") {
			seen[f[0]]++
		}
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("help lists %s %d times", k, n)
		}
	}
}

// TestSettingsAreFreshEachRun: nothing of one load survives into the next.
func TestSettingsAreFreshEachRun(t *testing.T) {
	clearEnv(t)
	t.Setenv("BTCPIPE_CRAWL_CONCURRENCY", "7")
	t.Setenv("BTCPIPE_METRICS_ADDR", "127.0.0.1:0")
	first := defaultCrawlSettings()
	if err := load(&first); err != nil {
		t.Fatal(err)
	}
	if first.Concurrency != 7 || first.Addr != "127.0.0.1:0" {
		t.Fatalf("loaded concurrency %d, metrics %q; want 7, 127.0.0.1:0", first.Concurrency, first.Addr)
	}
	os.Unsetenv("BTCPIPE_CRAWL_CONCURRENCY")
	os.Unsetenv("BTCPIPE_METRICS_ADDR")
	second := defaultCrawlSettings()
	if err := load(&second); err != nil {
		t.Fatal(err)
	}
	if second.Concurrency != crawler.DefaultConcurrency || second.Addr != "" {
		t.Errorf("second load: concurrency %d, metrics %q; want the defaults %d and empty", second.Concurrency, second.Addr, crawler.DefaultConcurrency)
	}
}

// TestStageSettings: the stage variables reach the pipeline configuration,
// and names that do not exist are refused.
func TestStageSettings(t *testing.T) {
	tests := []struct {
		env     map[string]string
		wantErr string
	}{
		{env: map[string]string{"BTCPIPE_TRANSPORT": "v1", "BTCPIPE_FRAMER": "slab", "BTCPIPE_VERIFIER": "parallel"}},
		{env: map[string]string{"BTCPIPE_TRANSPORT": "v1", "BTCPIPE_FRAMER": "copy", "BTCPIPE_WRITER": "direct"}},
		{env: map[string]string{"BTCPIPE_TRANSPORT": "nope"}, wantErr: `BTCPIPE_TRANSPORT: must be v1, v2 or auto, not "nope"`},
		{env: map[string]string{"BTCPIPE_FRAMER": "nope"}, wantErr: `BTCPIPE_FRAMER: unknown framer "nope" (have copy, slab, v2)`},
		{env: map[string]string{"BTCPIPE_TRANSPORT": "v2", "BTCPIPE_FRAMER": "copy"}, wantErr: `BTCPIPE_TRANSPORT: framer "copy" speaks v1, but transport "v2" is v2`},
		{env: map[string]string{"BTCPIPE_READER": "x"}, wantErr: "BTCPIPE_READER"},
		{env: map[string]string{"BTCPIPE_DISPATCHER": "x"}, wantErr: "BTCPIPE_DISPATCHER"},
		{env: map[string]string{"BTCPIPE_WRITER": "x"}, wantErr: "BTCPIPE_WRITER"},
	}
	for _, tt := range tests {
		t.Run(tt.wantErr, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			st := nodeSettings{Config: defaultConfig()}
			err := load(&st)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("load = %v, want an error naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			pc := pipelineConfig(&st.Config)
			if pc.Framer != tt.env["BTCPIPE_FRAMER"] || pc.Verifier != tt.env["BTCPIPE_VERIFIER"] {
				t.Errorf("pipeline framer %q, verifier %q; want %q, %q", pc.Framer, pc.Verifier, tt.env["BTCPIPE_FRAMER"], tt.env["BTCPIPE_VERIFIER"])
			}
		})
	}
}

// sizeReader records the size of the buffer of each Read.
type sizeReader struct{ sizes chan int }

func (r *sizeReader) Read(b []byte) (int, error) {
	r.sizes <- len(b)
	return 0, io.EOF
}

// TestReadBufferDoesWhatItSays: the reader reads into a buffer of
// BTCPIPE_READ_BUFFER bytes (a power of two: rounded up to the next).
func TestReadBufferDoesWhatItSays(t *testing.T) {
	for _, tc := range []struct {
		set  string
		want int
	}{
		{"65536", 65536}, {"131072", 131072}, {"100000", 131072}, {"8388608", 8 << 20},
	} {
		clearEnv(t)
		t.Setenv("BTCPIPE_READ_BUFFER", tc.set)
		st := decodeSettings{Config: defaultConfig()}
		if err := load(&st); err != nil {
			t.Fatal(err)
		}
		r := &sizeReader{sizes: make(chan int, 1)}
		rd := stages.NewReader(r, stagesOptions(&st.Config))
		rd.EndAtEOF = true
		out := make(chan stages.Chunk, 1)
		if err := rd.Run(context.Background(), nil, out); err != nil {
			t.Fatal(err)
		}
		if got := <-r.sizes; got != tc.want {
			t.Errorf("BTCPIPE_READ_BUFFER=%s: the reader reads into %d bytes, want %d", tc.set, got, tc.want)
		}
	}
	for _, bad := range []string{"1024", "65535", "16777216"} {
		clearEnv(t)
		t.Setenv("BTCPIPE_READ_BUFFER", bad)
		st := decodeSettings{Config: defaultConfig()}
		if err := load(&st); err == nil || !strings.Contains(err.Error(), "BTCPIPE_READ_BUFFER") {
			t.Errorf("BTCPIPE_READ_BUFFER=%s: load = %v, want an error naming it", bad, err)
		}
	}
}

// TestNodeExitsOnceOnPermanentFailure: a peer whose protocol is too old
// makes btcpipe node say so once and exit 1, without a retry.
func TestNodeExitsOnceOnPermanentFailure(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	fake := fakepeer.Listen(t, &wire.Regtest, fakepeer.Options{Handler: func(ctx context.Context, c *fakepeer.Conn) {
		if _, err := c.Expect(ctx, wire.CmdVersion); err != nil {
			return
		}
		_ = c.Send(ctx, c.Version(fakepeer.HandshakeOpts{Protocol: 60000}))
		_ = c.ExpectClosed(ctx)
	}})
	clearEnv(t)
	for k, v := range map[string]string{
		"BTCPIPE_NETWORK": "regtest", "BTCPIPE_PEER": fake.Addr().String(),
		"BTCPIPE_BACKOFF_MIN": "10ms", "BTCPIPE_BACKOFF_MAX": "20ms", "BTCPIPE_LOG_LEVEL": "warn",
		// v1: under auto the first, v2 attempt falls back (a second
		// connection, not a retry), which this test is not about.
		"BTCPIPE_TRANSPORT": "v1",
	} {
		t.Setenv(k, v)
	}
	var stdout, stderr strings.Builder
	done := make(chan int, 1)
	go func() { done <- run([]string{"node"}, &stdout, &stderr) }()
	var code int
	select {
	case code = <-done:
	case <-ctx.Done():
		t.Fatal("btcpipe node did not exit on a peer whose protocol is too old")
	}
	if code != exitFailed {
		t.Errorf("exit %d, want %d", code, exitFailed)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "protocol version too old") || !strings.Contains(lines[0], "node stopped") {
		t.Errorf("log = %q, want one line saying the node stopped on a too old protocol", stdout.String())
	}
	if n := fake.Accepted(); n != 1 {
		t.Errorf("%d connections, want 1 (no retry)", n)
	}
}
