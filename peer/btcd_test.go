package peer_test

// End-to-end tests against a real btcd v0.26.2 on loopback (internal/btcdtest
// starts it with --connect=127.0.0.1:1, so the addresses seeded here are data
// only and never dialled). Under CI=true a missing btcd fails these tests.

import (
	"context"
	"encoding/binary"
	"io"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/btcpipe/btcpipe/internal/btcdtest"
	"github.com/btcpipe/btcpipe/internal/version"
	"github.com/btcpipe/btcpipe/peer"
	"github.com/btcpipe/btcpipe/stages"
	"github.com/btcpipe/btcpipe/wire"
)

// traffic records, from the stages' point of view, the nonces of the pings
// and pongs that went each way and the commands received.
type traffic struct {
	stages.NopObserver
	mu        sync.Mutex
	pingsOut  []uint64
	pongsIn   []uint64
	pingsIn   []uint64
	pongsOut  []uint64
	received  map[string]int
	malformed []string
}

func newTraffic() *traffic { return &traffic{received: map[string]int{}} }

func (t *traffic) Decoded(m wire.Message) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.received[m.Command()]++
	switch m := m.(type) {
	case *wire.Ping:
		t.pingsIn = append(t.pingsIn, m.Nonce)
	case *wire.Pong:
		t.pongsIn = append(t.pongsIn, m.Nonce)
	}
}

func (t *traffic) DecodeFailed(f *wire.Frame, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.malformed = append(t.malformed, f.CommandName()+": "+err.Error())
}

func (t *traffic) FrameOut(cmd string, frame []byte) {
	if cmd != wire.CmdPing && cmd != wire.CmdPong {
		return
	}
	nonce := binary.LittleEndian.Uint64(frame[wire.HeaderSize:])
	t.mu.Lock()
	defer t.mu.Unlock()
	if cmd == wire.CmdPing {
		t.pingsOut = append(t.pingsOut, nonce)
	} else {
		t.pongsOut = append(t.pongsOut, nonce)
	}
}

func (t *traffic) count(cmd string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.received[cmd]
}

// answered reports whether some nonce sent in `asked` came back in `answers`.
func answered(asked, answers []uint64) bool {
	for _, a := range asked {
		for _, b := range answers {
			if a == b {
				return true
			}
		}
	}
	return false
}

type e2eNode struct {
	node       *peer.Node
	traffic    *traffic
	handshakes chan peer.Info
	addrs      chan []wire.NetAddrV2
	pongs      chan time.Duration
	cancel     context.CancelFunc
	done       chan error
}

func quietLog(t *testing.T) *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	if testing.Verbose() {
		l.SetOutput(testWriter{t})
	}
	return logrus.NewEntry(l)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// startNode runs a peer.Node against the btcd at addr until the test ends.
func startNode(t *testing.T, network *wire.Network, addr netip.AddrPort, tweak func(*peer.NodeConfig)) *e2eNode {
	t.Helper()
	sc := peer.DefaultConfig(network)
	sc.HandshakeTimeout = 10 * time.Second
	sc.PingInterval = 500 * time.Millisecond
	cfg := peer.NodeConfig{
		Session:     sc,
		Peer:        addr.String(),
		DialTimeout: 2 * time.Second,
		BackoffMin:  100 * time.Millisecond,
		BackoffMax:  time.Second,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	n := peer.NewNode(cfg, quietLog(t))
	e := &e2eNode{
		node: n, traffic: newTraffic(),
		handshakes: make(chan peer.Info, 16),
		addrs:      make(chan []wire.NetAddrV2, 16),
		pongs:      make(chan time.Duration, 1024),
		done:       make(chan error, 1),
	}
	n.Observer = e.traffic
	n.Hooks.Handshake = func(i peer.Info) { e.handshakes <- i }
	n.Hooks.Addrs = func(l []wire.NetAddrV2) { e.addrs <- append([]wire.NetAddrV2(nil), l...) }
	n.Hooks.Pong = func(d time.Duration) {
		select {
		case e.pongs <- d:
		default:
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	go func() { e.done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-e.done:
			if err != nil {
				t.Errorf("Node.Run returned %v, want nil after cancel", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Node.Run did not return within 5s of cancel")
		}
	})
	return e
}

func waitFor[T any](t *testing.T, ch <-chan T, d time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("timed out after %s waiting for %s", d, what)
		var zero T
		return zero
	}
}

// checkBtcdLog asserts btcd accepted our connection and complained about
// nothing we sent.
func checkBtcdLog(t *testing.T, b *btcdtest.Node) {
	t.Helper()
	// btcd logs the new peer once it has processed our verack, which may be
	// a moment after our side saw the handshake complete.
	wantUA := version.UserAgent()
	log := b.Log()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); log = b.Log() {
		if strings.Contains(log, "New valid peer") && strings.Contains(log, wantUA) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(log, "New valid peer") || !strings.Contains(log, wantUA) {
		t.Errorf("btcd's log does not show a valid peer with user agent %s:\n%s", wantUA, log)
	}
	for _, bad := range []string{"reject", "malformed", "Allowed test error", "disconnecting", "Disconnecting", "misbehav"} {
		if strings.Contains(log, bad) {
			t.Errorf("btcd's log mentions %q:\n%s", bad, log)
		}
	}
}

func TestBtcdHandshakePingAndAddrV2(t *testing.T) {
	t.Parallel()
	testBtcdGetAddr(t, btcdCase{addrv2: true})
}

func TestBtcdGetAddrOverAddr(t *testing.T) {
	t.Parallel()
	testBtcdGetAddr(t, btcdCase{})
}

// TestBtcdV2: the same getaddr count and pings over BIP324, against a btcd
// started with --v2transport, with BTCPIPE_TRANSPORT v2 and auto.
func TestBtcdV2(t *testing.T) {
	t.Parallel()
	for _, tr := range []string{peer.TransportV2, peer.TransportAuto} {
		t.Run(tr, func(t *testing.T) {
			testBtcdGetAddr(t, btcdCase{addrv2: true, btcdV2: true, transport: tr, want: "v2"})
		})
	}
}

// TestBtcdAutoFallsBackToV1: auto against a btcd without --v2transport
// (which closes on our key) reconnects with v1 and counts the same peers.
func TestBtcdAutoFallsBackToV1(t *testing.T) {
	t.Parallel()
	testBtcdGetAddr(t, btcdCase{addrv2: true, transport: peer.TransportAuto, want: "v1", fallback: true})
}

// testBtcdGetAddr seeds btcd with routable addresses (one per /16, so it
// stores them all), then checks that our getaddr yields exactly the 23 %
// (rounded down) btcd is documented to give, every one of them seeded, over
// addrv2 when we sent sendaddrv2 and over addr when we did not.
// btcdCase is one run of testBtcdGetAddr: whether we send sendaddrv2,
// whether btcd runs with --v2transport, our transport policy, the
// transport the connection must end up with ("": v1 by default), and
// whether a v2 attempt falls back first.
type btcdCase struct {
	addrv2, btcdV2 bool
	transport      string
	want           string
	fallback       bool
}

func testBtcdGetAddr(t *testing.T, tc btcdCase) {
	addrv2 := tc.addrv2
	b := btcdtest.Start(t, btcdtest.Options{Network: "regtest", ExtraArgs: []string{"--debuglevel=AMGR=trace"}, V2Transport: tc.btcdV2})
	seeded := btcdtest.RoutableAddrs(400, 7)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := btcdtest.SeedAddrs(ctx, b.Addr, "regtest", seeded); err != nil {
		t.Fatalf("seeding btcd: %v", err)
	}
	stored, err := b.AddrCount()
	if err != nil {
		t.Fatalf("reading how many addresses btcd stored: %v", err)
	}
	if stored < 390 {
		t.Fatalf("btcd stored %d of 400 seeded addresses; want (nearly) all", stored)
	}
	want := stored * 23 / 100

	e := startNode(t, &wire.Regtest, b.Addr, func(c *peer.NodeConfig) {
		c.Session.SendAddrV2 = addrv2
		c.Transport = tc.transport
	})
	info := waitFor(t, e.handshakes, 10*time.Second, "the handshake")
	if want := or(tc.want, "v1"); info.Transport != want && !(tc.want == "" && info.Transport == "") {
		t.Errorf("transport %q, want %q", info.Transport, want)
	}
	if (info.Transport == "v2") != (len(info.SessionID) == 64) {
		t.Errorf("transport %q with session id %q", info.Transport, info.SessionID)
	}
	if got, want := info.Version.UserAgent, "/btcwire:0.5.0/btcd:0.26.2/"; got != want {
		t.Errorf("peer user agent = %q, want %q", got, want)
	}
	if info.Version.Protocol != wire.ProtocolVersion {
		t.Errorf("peer protocol = %d, want %d", info.Version.Protocol, wire.ProtocolVersion)
	}

	got := waitFor(t, e.addrs, 10*time.Second, "btcd's answer to getaddr")
	if len(got) != want {
		t.Errorf("getaddr returned %d addresses, want %d (23%% of %d stored)", len(got), want, stored)
	}
	seededSet := map[netip.AddrPort]bool{}
	for _, a := range seeded {
		seededSet[a] = true
	}
	unique := map[netip.AddrPort]bool{}
	for _, a := range got {
		ap, ok := a.AddrPort()
		if !ok || !seededSet[ap] {
			t.Errorf("getaddr returned %s, which we never seeded", a)
		}
		unique[ap] = true
	}
	if len(unique) != len(got) {
		t.Errorf("getaddr returned %d addresses but only %d distinct", len(got), len(unique))
	}
	if got, want := e.node.Book.Len(), len(unique); got != want {
		t.Errorf("node's address book holds %d, want %d", got, want)
	}
	gotCmd, otherCmd := wire.CmdAddr, wire.CmdAddrV2
	if addrv2 {
		gotCmd, otherCmd = otherCmd, gotCmd
	}
	if e.traffic.count(gotCmd) != 1 || e.traffic.count(otherCmd) != 0 {
		t.Errorf("received %d %s and %d %s messages, want 1 and 0", e.traffic.count(gotCmd), gotCmd, e.traffic.count(otherCmd), otherCmd)
	}

	// Our ping comes back as a pong with its nonce.
	waitFor(t, e.pongs, 5*time.Second, "a pong to our ping")
	e.traffic.mu.Lock()
	ok := answered(e.traffic.pingsOut, e.traffic.pongsIn)
	malformed := e.traffic.malformed
	e.traffic.mu.Unlock()
	if !ok {
		t.Errorf("no pong carried the nonce of one of our pings")
	}
	if len(malformed) > 0 {
		t.Errorf("messages from btcd failed to decode: %v", malformed)
	}
	if tc.fallback {
		return // btcd logs the v2 attempt it closed; nothing else to check there
	}
	checkBtcdLog(t, b)
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// TestBtcdRestartReconnects kills btcd, starts it again on the same port and
// checks the node reconnects and handshakes again by itself.
func TestBtcdRestartReconnects(t *testing.T) {
	t.Parallel()
	b := btcdtest.Start(t, btcdtest.Options{Network: "regtest"})
	e := startNode(t, &wire.Regtest, b.Addr, nil)
	waitFor(t, e.handshakes, 10*time.Second, "the first handshake")
	if !e.node.Ready() {
		t.Errorf("Ready() = false after the handshake")
	}
	b.Kill()
	deadline := time.Now().Add(5 * time.Second)
	for e.node.Ready() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if e.node.Ready() {
		t.Errorf("Ready() = true 5s after btcd was killed")
	}
	if err := b.Restart(); err != nil {
		t.Fatalf("restarting btcd: %v", err)
	}
	info := waitFor(t, e.handshakes, 15*time.Second, "the handshake after btcd restarted")
	if info.Addr != b.Addr {
		t.Errorf("reconnected to %s, want %s", info.Addr, b.Addr)
	}
	checkBtcdLog(t, b)
}

// TestBtcdSimnetStrict handshakes with btcd on simnet, where btcd sends
// reject and disconnects on any malformed message: staying connected through
// several ping round trips shows we sent nothing it objects to.
func TestBtcdSimnetStrict(t *testing.T) {
	t.Parallel()
	b := btcdtest.Start(t, btcdtest.Options{Network: "simnet"})
	e := startNode(t, &wire.Simnet, b.Addr, func(c *peer.NodeConfig) { c.Session.PingInterval = 200 * time.Millisecond })
	waitFor(t, e.handshakes, 10*time.Second, "the simnet handshake")
	for i := range 3 {
		waitFor(t, e.pongs, 5*time.Second, "pong "+string(rune('1'+i)))
	}
	if !e.node.Ready() {
		t.Errorf("not ready after three ping round trips on simnet: btcd dropped us")
	}
	if n := e.traffic.count(wire.CmdReject); n != 0 {
		t.Errorf("btcd sent %d reject messages", n)
	}
	select {
	case <-e.handshakes:
		t.Errorf("a second handshake: the connection was dropped and re-made")
	default:
	}
	checkBtcdLog(t, b)
}
