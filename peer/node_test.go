package peer_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/btcpipe/btcpipe/internal/fakepeer"
	"github.com/btcpipe/btcpipe/peer"
	"github.com/btcpipe/btcpipe/wire"
)

// reconnect is one call of NodeHooks.Reconnect.
type reconnect struct {
	attempt int
	wait    time.Duration
}

// nodeRun is a Node running against a fake peer, with its hooks' calls on
// channels.
type nodeRun struct {
	node         *peer.Node
	fake         *fakepeer.Peer
	connected    chan netip.AddrPort
	disconnected chan error
	reconnects   chan reconnect
	handshakes   chan peer.Info
	cancel       context.CancelFunc
	done         chan error // Run's result
}

// startFakeNode runs a node against a new fake peer (served by handler if set,
// else by the test with Accept). Its hooks never block: the channels hold
// far more than a test produces.
func startFakeNode(t *testing.T, handler func(context.Context, *fakepeer.Conn), tweak func(*peer.NodeConfig)) *nodeRun {
	t.Helper()
	fake := fakepeer.Listen(t, &wire.Regtest, fakepeer.Options{Handler: handler})
	cfg := peer.NodeConfig{
		Session:     testConfig(),
		Peer:        fake.Addr().String(),
		DialTimeout: time.Second,
		BackoffMin:  10 * time.Millisecond,
		BackoffMax:  40 * time.Millisecond,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	r := &nodeRun{
		node:         peer.NewNode(cfg, nullLog()),
		fake:         fake,
		connected:    make(chan netip.AddrPort, 1000),
		disconnected: make(chan error, 1000),
		reconnects:   make(chan reconnect, 1000),
		handshakes:   make(chan peer.Info, 1000),
		done:         make(chan error, 1),
	}
	r.node.Hooks = peer.NodeHooks{
		Hooks:        peer.Hooks{Handshake: func(i peer.Info) { r.handshakes <- i }},
		Connected:    func(a netip.AddrPort) { r.connected <- a },
		Disconnected: func(_ netip.AddrPort, err error) { r.disconnected <- err },
		Reconnect:    func(a int, w time.Duration) { r.reconnects <- reconnect{a, w} },
	}
	ctx, cancel := context.WithCancel(t.Context())
	r.cancel = cancel
	go func() { r.done <- r.node.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-r.done; r.done <- nil })
	return r
}

// next waits up to 3s for a value on ch.
func next[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(3 * time.Second):
		t.Fatalf("no %s within 3s", what)
		var zero T
		return zero
	}
}

// stop cancels the node and checks that Run returns nil promptly.
func (r *nodeRun) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	start := time.Now()
	err := next(t, r.done, "return from Node.Run after cancel")
	r.done <- err
	if err != nil {
		t.Errorf("Node.Run = %v after cancel, want nil", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Node.Run took %s to return after cancel, want it prompt", d)
	}
}

func TestNodeCountsUniqueAddrsAndUnknownCommands(t *testing.T) {
	ctx := testCtx(t)
	r := startFakeNode(t, nil, nil)
	c, err := r.fake.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.node.Ready() {
		t.Errorf("Ready() before the handshake = true")
	}
	if _, err := c.Handshake(ctx, fakepeer.HandshakeOpts{SendAddrV2: true, UserAgent: "/fake:2/"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitFor(ctx, wire.CmdGetAddr); err != nil {
		t.Fatal(err)
	}
	if info := next(t, r.handshakes, "handshake"); info.Version.UserAgent != "/fake:2/" || info.Addr != r.fake.Addr() {
		t.Errorf("Hooks.Handshake got user agent %q, address %v; want /fake:2/, %v", info.Version.UserAgent, info.Addr, r.fake.Addr())
	}
	if !r.node.Ready() {
		t.Errorf("Ready() after the handshake = false")
	}

	ap := netip.MustParseAddrPort
	at := func(s string, tm uint32) wire.TimedNetAddr {
		return wire.TimedNetAddr{Time: tm, NetAddr: wire.NetAddr{Services: 1, Addr: ap(s)}}
	}
	tor := wire.NetAddrV2{Time: 5, Network: wire.NetTorV3, Port: 8333}.WithKey([32]byte{7, 7, 7})
	mustSend(t, ctx, c,
		&wire.Addr{List: []wire.TimedNetAddr{
			at("1.2.3.4:8333", 1), at("1.2.3.4:8333", 2), // the same address twice
			at("[2001:db8::1]:8333", 3), at("5.6.7.8:8333", 4),
			at("[::ffff:5.6.7.8]:8333", 4), // IPv4-mapped: the same as 5.6.7.8
			at("5.6.7.8:8334", 4),          // another port: another address
		}},
		&wire.Raw{Cmd: "mystery", Payload: []byte{1, 2, 3}},
		&wire.AddrV2{List: []wire.NetAddrV2{
			wire.NetAddrV2FromAddrPort(ap("1.2.3.4:8333"), 0, 9), // known from addr
			tor, tor,
			wire.NetAddrV2FromAddrPort(ap("9.9.9.9:8333"), 0, 9),
		}},
		&wire.Ping{Nonce: 77, HasNonce: true})
	if got := pong(t, ctx, c); got != 77 {
		t.Fatalf("pong %d, want 77", got)
	}
	want := []string{"1.2.3.4:8333", "[2001:db8::1]:8333", "5.6.7.8:8333", "5.6.7.8:8334", tor.String(), "9.9.9.9:8333"}
	if got := r.node.Book.Len(); got != len(want) {
		t.Errorf("Book.Len() = %d, want %d unique addresses", got, len(want))
	}
	for _, a := range want {
		if !r.node.Book.Has(a) {
			t.Errorf("Book lacks %s", a)
		}
	}
	if got := r.node.Counters.Unknown.Load(); got != 1 {
		t.Errorf("Counters.Unknown = %d, want 1 (mystery)", got)
	}

	// The same addresses again add nothing.
	mustSend(t, ctx, c, &wire.Addr{List: []wire.TimedNetAddr{at("1.2.3.4:8333", 10)}}, &wire.Ping{Nonce: 78, HasNonce: true})
	pong(t, ctx, c)
	if got := r.node.Book.Len(); got != len(want) {
		t.Errorf("Book.Len() after duplicates = %d, want %d", got, len(want))
	}
	r.stop(t)
	if err := c.ExpectClosed(ctx); err != nil {
		t.Errorf("the connection was not closed after the node stopped: %v", err)
	}
}

func TestNodeReconnectsAfterPingTimeout(t *testing.T) {
	ctx := testCtx(t)
	r := startFakeNode(t, nil, func(c *peer.NodeConfig) {
		c.Session.PingTimeout = 100 * time.Millisecond
		c.BackoffMin, c.BackoffMax = 20*time.Millisecond, 40*time.Millisecond
	})
	c1, err := r.fake.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c1.Handshake(ctx, fakepeer.HandshakeOpts{}); err != nil {
		t.Fatal(err)
	}
	// We answer nothing: the node's ping times out and it hangs up.
	if err := c1.ExpectClosed(ctx); err != nil {
		t.Fatalf("first connection: %v", err)
	}
	if err := next(t, r.disconnected, "disconnect"); !errors.Is(err, peer.ErrPingTimeout) {
		t.Errorf("Disconnected with %v, want peer.ErrPingTimeout", err)
	}
	// The handshake completed: the backoff starts again from attempt 1.
	rc := next(t, r.reconnects, "reconnect")
	if rc.attempt != 1 || rc.wait < 10*time.Millisecond || rc.wait > 20*time.Millisecond {
		t.Errorf("Reconnect(%d, %s), want attempt 1 and a wait in [10ms, 20ms]", rc.attempt, rc.wait)
	}
	c2, err := r.fake.Accept(ctx)
	if err != nil {
		t.Fatalf("no second connection: %v", err)
	}
	if _, err := c2.Handshake(ctx, fakepeer.HandshakeOpts{}); err != nil {
		t.Fatalf("second handshake: %v", err)
	}
	next(t, r.handshakes, "first handshake")
	next(t, r.handshakes, "second handshake")
	if got := r.fake.Accepted(); got != 2 {
		t.Errorf("fake peer accepted %d connections, want 2", got)
	}
	if !r.node.Ready() {
		t.Errorf("Ready() after the second handshake = false")
	}
	r.stop(t)
}

// TestNodeBackoffGrows: a peer that hangs up before the handshake makes
// each reconnect wait longer, up to BackoffMax.
func TestNodeBackoffGrows(t *testing.T) {
	const min, max = 4 * time.Millisecond, 20 * time.Millisecond
	r := startFakeNode(t, func(ctx context.Context, c *fakepeer.Conn) { c.Close() }, func(c *peer.NodeConfig) {
		c.BackoffMin, c.BackoffMax = min, max
	})
	for want := 1; want <= 6; want++ {
		rc := next(t, r.reconnects, "reconnect")
		if rc.attempt != want {
			t.Fatalf("Reconnect attempt %d, want %d", rc.attempt, want)
		}
		d := bound(want, min, max)
		if rc.wait < d/2 || rc.wait > d {
			t.Errorf("attempt %d: wait %s, want in [%s, %s]", want, rc.wait, d/2, d)
		}
		if err := next(t, r.disconnected, "disconnect"); err == nil {
			t.Errorf("attempt %d: Disconnected with a nil error", want)
		}
	}
	r.stop(t)
	if got := len(r.handshakes); got != 0 {
		t.Errorf("%d handshakes with a peer that hangs up at once, want 0", got)
	}
}

// bound is the un-jittered backoff of attempt n.
func bound(n int, min, max time.Duration) time.Duration {
	d := min << (n - 1)
	if d <= 0 || d > max {
		d = max
	}
	return d
}

func TestNodeDialFailures(t *testing.T) {
	dials := 0
	r := startFakeNode(t, nil, func(c *peer.NodeConfig) {
		c.Dial = func(context.Context, netip.AddrPort) (net.Conn, error) {
			dials++ // only Run's goroutine dials
			return nil, syscall.ECONNREFUSED
		}
		c.BackoffMin, c.BackoffMax = time.Millisecond, 2*time.Millisecond
	})
	for want := 1; want <= 3; want++ {
		if rc := next(t, r.reconnects, "reconnect"); rc.attempt != want {
			t.Errorf("Reconnect attempt %d, want %d", rc.attempt, want)
		}
	}
	r.stop(t)
	if dials < 3 {
		t.Errorf("%d dials for 3 reconnects, want at least 3", dials)
	}
	if len(r.connected) != 0 || len(r.disconnected) != 0 {
		t.Errorf("Connected/Disconnected called %d/%d times without a connection", len(r.connected), len(r.disconnected))
	}
}

func TestNodeStopsPromptly(t *testing.T) {
	t.Run("connected", func(t *testing.T) {
		leaks := goleak.IgnoreCurrent()
		ctx := testCtx(t)
		r := startFakeNode(t, nil, nil)
		c, err := r.fake.Accept(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Handshake(ctx, fakepeer.HandshakeOpts{}); err != nil {
			t.Fatal(err)
		}
		next(t, r.handshakes, "handshake")
		r.stop(t)
		if err := c.ExpectClosed(ctx); err != nil {
			t.Errorf("connection not closed: %v", err)
		}
		if err := next(t, r.disconnected, "disconnect"); !errors.Is(err, context.Canceled) {
			t.Errorf("Disconnected with %v, want context.Canceled", err)
		}
		if len(r.reconnects) != 0 {
			t.Errorf("the node scheduled a reconnect after it was stopped")
		}
		r.fake.Close()
		goleak.VerifyNone(t, leaks)
	})
	t.Run("waiting to reconnect", func(t *testing.T) {
		leaks := goleak.IgnoreCurrent()
		r := startFakeNode(t, func(ctx context.Context, c *fakepeer.Conn) { c.Close() }, func(c *peer.NodeConfig) {
			c.BackoffMin, c.BackoffMax = time.Hour, time.Hour
		})
		next(t, r.reconnects, "reconnect")
		r.stop(t)
		r.fake.Close()
		goleak.VerifyNone(t, leaks)
	})
	t.Run("mid-handshake", func(t *testing.T) {
		leaks := goleak.IgnoreCurrent()
		ctx := testCtx(t)
		r := startFakeNode(t, nil, nil)
		c, err := r.fake.Accept(ctx)
		if err != nil {
			t.Fatal(err)
		}
		mustExpect(t, ctx, c, wire.CmdVersion)
		r.stop(t)
		r.fake.Close()
		goleak.VerifyNone(t, leaks)
	})
}

// TestNodeResolvesThroughHook: host names and the network's seeds are
// resolved with NodeConfig.Resolve (no DNS here), and the address dialled
// gets the network's default port unless the name has one.
func TestNodeResolvesThroughHook(t *testing.T) {
	tests := []struct {
		name     string
		network  *wire.Network
		peer     string
		wantHost string // asked of Resolve ("" : not asked)
		wantDial string
	}{
		{name: "name and port", network: &wire.Regtest, peer: "node.test:1234", wantHost: "node.test", wantDial: "127.0.0.2:1234"},
		{name: "name, default port", network: &wire.Mainnet, peer: "node.test", wantHost: "node.test", wantDial: "127.0.0.2:8333"},
		{name: "IP: no lookup", network: &wire.Testnet3, peer: "127.0.0.3", wantDial: "127.0.0.3:18333"},
		{name: "bracketed IPv6, no port", network: &wire.Signet, peer: "[::1]", wantDial: "[::1]:38333"},
		{name: "regtest default", network: &wire.Regtest, peer: "", wantDial: "127.0.0.1:18444"},
		{name: "mainnet seeds", network: &wire.Mainnet, peer: "", wantHost: "(a seed)", wantDial: "127.0.0.2:8333"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				mu       sync.Mutex
				resolved []string
			)
			dialled := make(chan netip.AddrPort, 10)
			cfg := peer.NodeConfig{
				Session:    peer.DefaultConfig(tt.network),
				Peer:       tt.peer,
				BackoffMin: time.Hour, BackoffMax: time.Hour,
				Resolve: func(ctx context.Context, host string) ([]netip.Addr, error) {
					mu.Lock()
					resolved = append(resolved, host)
					mu.Unlock()
					return []netip.Addr{netip.MustParseAddr("::ffff:127.0.0.2")}, nil
				},
				Dial: func(ctx context.Context, a netip.AddrPort) (net.Conn, error) {
					dialled <- a
					return nil, errors.New("not dialling in a test")
				},
			}
			node := peer.NewNode(cfg, nullLog())
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- node.Run(ctx) }()
			got := next(t, dialled, "dial")
			cancel()
			next(t, done, "return from Run")
			if got.String() != tt.wantDial {
				t.Errorf("dialled %s, want %s", got, tt.wantDial)
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case tt.wantHost == "":
				if len(resolved) != 0 {
					t.Errorf("resolved %v, want no lookup", resolved)
				}
			case tt.wantHost == "(a seed)":
				if len(resolved) != 1 || !slices.Contains(tt.network.DNSSeeds, resolved[0]) {
					t.Errorf("resolved %v, want one of %s's seeds", resolved, tt.network.Name)
				}
			default:
				if !slices.Equal(resolved, []string{tt.wantHost}) {
					t.Errorf("resolved %v, want [%s]", resolved, tt.wantHost)
				}
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		attempt  int
		min, max time.Duration
		want     time.Duration // the bound: the wait is in [want/2, want]
	}{
		{1, time.Second, 5 * time.Minute, time.Second},
		{2, time.Second, 5 * time.Minute, 2 * time.Second},
		{5, time.Second, 5 * time.Minute, 16 * time.Second},
		{9, time.Second, 5 * time.Minute, 256 * time.Second},
		{10, time.Second, 5 * time.Minute, 5 * time.Minute},
		{31, time.Second, 5 * time.Minute, 5 * time.Minute},
		{32, time.Second, 5 * time.Minute, 5 * time.Minute},
		{1000, time.Second, 5 * time.Minute, 5 * time.Minute},
		{40, time.Hour, 1<<63 - 1, 1<<63 - 1},      // the shift overflows: capped
		{1, time.Minute, time.Second, time.Second}, // min over max: max
		{3, 0, time.Second, time.Second},
		{1, 3 * time.Nanosecond, time.Second, 3 * time.Nanosecond},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("attempt %d of %s..%s", tt.attempt, tt.min, tt.max), func(t *testing.T) {
			seen := map[time.Duration]bool{}
			for range 200 {
				got := peer.Backoff(tt.attempt, tt.min, tt.max)
				if got < tt.want/2 || got > tt.want {
					t.Fatalf("Backoff(%d, %s, %s) = %s, want in [%s, %s]", tt.attempt, tt.min, tt.max, got, tt.want/2, tt.want)
				}
				seen[got] = true
			}
			// Jitter: 200 draws from [d/2, d] are not all the same.
			if tt.want >= time.Microsecond && len(seen) < 2 {
				t.Errorf("Backoff(%d, %s, %s) gave one value in 200 draws: no jitter", tt.attempt, tt.min, tt.max)
			}
		})
	}
}

func TestAddrBook(t *testing.T) {
	a := func(s string) wire.NetAddrV2 {
		return wire.NetAddrV2FromAddrPort(netip.MustParseAddrPort(s), 0, 0)
	}
	b := peer.NewAddrBook(3)
	steps := []struct {
		add                 []wire.NetAddrV2
		wantAdded, wantUniq int
	}{
		{add: []wire.NetAddrV2{a("1.1.1.1:1"), a("1.1.1.1:1"), a("2.2.2.2:2")}, wantAdded: 2, wantUniq: 2},
		{add: []wire.NetAddrV2{a("2.2.2.2:2")}, wantAdded: 0, wantUniq: 2},
		{add: nil, wantAdded: 0, wantUniq: 2},
		// Past Max, new addresses are not kept.
		{add: []wire.NetAddrV2{a("3.3.3.3:3"), a("4.4.4.4:4"), a("1.1.1.1:1")}, wantAdded: 1, wantUniq: 3},
	}
	for i, s := range steps {
		added, uniq := b.Add(s.add)
		if added != s.wantAdded || uniq != s.wantUniq {
			t.Errorf("step %d: Add = %d, %d; want %d, %d", i, added, uniq, s.wantAdded, s.wantUniq)
		}
	}
	if b.Len() != 3 || !b.Has("3.3.3.3:3") || b.Has("4.4.4.4:4") {
		t.Errorf("book: Len %d, has 3.3.3.3:3 %v, has 4.4.4.4:4 %v; want 3, true, false", b.Len(), b.Has("3.3.3.3:3"), b.Has("4.4.4.4:4"))
	}
	if got := peer.NewAddrBook(0).Max; got != peer.DefaultMaxAddrs {
		t.Errorf("NewAddrBook(0).Max = %d, want %d", got, peer.DefaultMaxAddrs)
	}
}

func TestNonces(t *testing.T) {
	var n peer.Nonces
	seen := map[uint64]bool{}
	for range 1000 {
		v := n.New()
		if v == 0 || seen[v] {
			t.Fatalf("New() = %d: zero or repeated", v)
		}
		seen[v] = true
		if !n.Has(v) {
			t.Fatalf("Has(%d) = false right after New", v)
		}
	}
	for v := range seen {
		n.Forget(v)
		if n.Has(v) {
			t.Fatalf("Has(%d) = true after Forget", v)
		}
	}
}
