package peer_test

// The hostile-peer suite: a peer.Node against fake peers on loopback that
// misbehave in every way the hardening issue lists. Each case checks that
// the node keeps running, that the error ending the connection (when one
// does) is a *stages.Error naming the peer, the stage and the command and
// wrapping the right sentinel, that memory stays bounded (runtime.MemStats
// before, during and after), that the node reconnects or stays connected as
// the case requires, and that no goroutine is left behind.
//
// The cases run one after another, not in parallel: the memory figures are
// the process's, and must be the case's alone.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	"go.uber.org/goleak"

	"github.com/btcpipe/btcpipe/internal/fakepeer"
	"github.com/btcpipe/btcpipe/peer"
	"github.com/btcpipe/btcpipe/stages"
	"github.com/btcpipe/btcpipe/wire"
)

const (
	hostileKiB = 1 << 10
	hostileMiB = 1 << 20
)

// hostileMeter measures one case: memory before, at its peak and after, and
// the goroutines that were there before it.
type hostileMeter struct {
	leaks  goleak.Option
	before runtime.MemStats
	after  runtime.MemStats
	peak   atomic.Uint64 // highest HeapInuse sampled
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

// hostileRace is whether the test binary runs under the race detector,
// whose sync.Pool drops items at random (so slabs and batches are
// allocated again) and whose instrumentation slows the node down: the
// budgets that depend on pooling have a race value (see hostileBudget).
// Plain `go test` checks the tight ones.
var hostileRace = func() bool {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-race" {
				return s.Value == "true"
			}
		}
	}
	return false
}()

// hostileBudget returns budget, or raceBudget under the race detector.
func hostileBudget(budget, raceBudget uint64) uint64 {
	if hostileRace {
		return raceBudget
	}
	return budget
}

// hostileGC collects twice, so that what the sync.Pools hold (slabs and
// batches) is freed too: the second collection empties the pools' victim
// caches.
func hostileGC() {
	runtime.GC()
	runtime.GC()
}

// hostileMeasure starts measuring: a GC, a first reading, then a reading
// of HeapInuse every 2 ms until end (or the end of a test that failed
// before it).
func hostileMeasure(t *testing.T) *hostileMeter {
	m := &hostileMeter{leaks: goleak.IgnoreCurrent(), stop: make(chan struct{}), done: make(chan struct{})}
	hostileGC()
	runtime.ReadMemStats(&m.before)
	m.peak.Store(m.before.HeapInuse)
	t.Cleanup(m.stopSampling)
	go func() {
		defer close(m.done)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			select {
			case <-t.C:
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > m.peak.Load() {
					m.peak.Store(ms.HeapInuse)
				}
			case <-m.stop:
				return
			}
		}
	}()
	return m
}

func (m *hostileMeter) stopSampling() {
	m.once.Do(func() {
		close(m.stop)
		<-m.done
	})
}

// end stops measuring (after the node and the fake peer have stopped),
// logs the figures, checks them against the budgets and checks that every
// goroutine started since hostileMeasure has returned.
//
// allocBudget bounds everything allocated during the case (TotalAlloc, by
// the node and the fake peer together); peakBudget bounds how far the heap
// in use rose above where it started.
func (m *hostileMeter) end(t *testing.T, allocBudget, peakBudget uint64) {
	t.Helper()
	m.stopSampling()
	hostileGC()
	runtime.ReadMemStats(&m.after)
	alloc := m.after.TotalAlloc - m.before.TotalAlloc
	peak := m.peak.Load() - min(m.peak.Load(), m.before.HeapInuse)
	retained := int64(m.after.HeapInuse) - int64(m.before.HeapInuse)
	t.Logf("memory (race detector %v): allocated %.2f MiB (%d mallocs), heap in use rose at most %.2f MiB, %+.2f MiB after (budgets %.1f and %.1f MiB)",
		hostileRace, float64(alloc)/hostileMiB, m.after.Mallocs-m.before.Mallocs, float64(peak)/hostileMiB, float64(retained)/hostileMiB,
		float64(allocBudget)/hostileMiB, float64(peakBudget)/hostileMiB)
	if alloc > allocBudget {
		t.Errorf("allocated %d bytes during the case, budget %d", alloc, allocBudget)
	}
	if peak > peakBudget {
		t.Errorf("heap in use rose by %d bytes during the case, budget %d", peak, peakBudget)
	}
	if retained > 1*hostileMiB {
		t.Errorf("heap in use is %d bytes higher after the case than before: something was kept", retained)
	}
	goleak.VerifyNone(t, m.leaks)
}

// hostileNode is a peer.Node under test with what its hooks report.
type hostileNode struct {
	t          *testing.T
	node       *peer.Node
	logs       *logtest.Hook
	bytesRead  atomic.Int64 // every byte the node read, from NodeConfig.Record
	connected  chan time.Time
	disconnect chan hostileDisconnect
	handshakes chan peer.Info
	pongs      chan time.Duration
	cancel     context.CancelFunc
	done       chan error
	stopOnce   sync.Once
}

type hostileDisconnect struct {
	at  time.Time
	err error
}

type hostileCounter struct{ n *atomic.Int64 }

func (c hostileCounter) Write(p []byte) (int, error) { c.n.Add(int64(len(p))); return len(p), nil }

// hostileConfig is the node configuration the cases start from: regtest,
// the given peer, short backoff, pings rare enough to stay out of the way.
func hostileConfig(addr netip.AddrPort) peer.NodeConfig {
	sc := peer.DefaultConfig(&wire.Regtest)
	sc.HandshakeTimeout = 2 * time.Second
	sc.PingInterval = time.Minute
	sc.PingTimeout = time.Minute
	cfg := peer.NodeConfig{
		Session:     sc,
		Peer:        addr.String(),
		DialTimeout: time.Second,
		BackoffMin:  20 * time.Millisecond,
		BackoffMax:  100 * time.Millisecond,
	}
	cfg.Pipeline.Options.WriteTimeout = 2 * time.Second
	return cfg
}

// hostileStart runs a node against addr until stop (or the test's end).
func hostileStart(t *testing.T, addr netip.AddrPort, tweak func(*peer.NodeConfig)) *hostileNode {
	t.Helper()
	cfg := hostileConfig(addr)
	if tweak != nil {
		tweak(&cfg)
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	log.SetLevel(logrus.InfoLevel)
	h := &hostileNode{
		t:          t,
		logs:       logtest.NewLocal(log),
		connected:  make(chan time.Time, 64),
		disconnect: make(chan hostileDisconnect, 64),
		handshakes: make(chan peer.Info, 64),
		pongs:      make(chan time.Duration, 64),
		done:       make(chan error, 1),
	}
	cfg.Record = hostileCounter{&h.bytesRead}
	n := peer.NewNode(cfg, logrus.NewEntry(log))
	h.node = n
	// The hooks never block the node: a case that goes wrong (a node
	// reconnecting in a loop) must fail, not hang.
	n.Hooks.Connected = func(netip.AddrPort) { hostileOffer(h.connected, time.Now()) }
	n.Hooks.Disconnected = func(_ netip.AddrPort, err error) {
		hostileOffer(h.disconnect, hostileDisconnect{time.Now(), err})
	}
	n.Hooks.Handshake = func(i peer.Info) { hostileOffer(h.handshakes, i) }
	n.Hooks.Pong = func(d time.Duration) { hostileOffer(h.pongs, d) }
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- n.Run(ctx) }()
	t.Cleanup(h.stop)
	return h
}

// hostileOffer sends v on ch unless ch is full.
func hostileOffer[T any](ch chan T, v T) {
	select {
	case ch <- v:
	default:
	}
}

// stop cancels the node and checks that Run returns nil promptly.
func (h *hostileNode) stop() {
	h.stopOnce.Do(func() {
		h.cancel()
		select {
		case err := <-h.done:
			if err != nil {
				h.t.Errorf("Node.Run returned %v after cancel, want nil", err)
			}
		case <-time.After(5 * time.Second):
			h.t.Errorf("Node.Run did not return within 5s of cancel")
		}
	})
}

// running fails the test if Run has returned: a misbehaving peer must never
// stop the node.
func (h *hostileNode) running() {
	h.t.Helper()
	select {
	case err := <-h.done:
		h.t.Fatalf("Node.Run returned %v while the peer misbehaved", err)
	default:
	}
}

// waitDisconnect returns the error the next connection ended with.
func (h *hostileNode) waitDisconnect(d time.Duration) hostileDisconnect {
	h.t.Helper()
	select {
	case dc := <-h.disconnect:
		return dc
	case <-time.After(d):
		h.t.Fatalf("the node did not drop the connection within %s", d)
		return hostileDisconnect{}
	}
}

// noDisconnect fails the test if a connection has ended.
func (h *hostileNode) noDisconnect() {
	h.t.Helper()
	select {
	case dc := <-h.disconnect:
		h.t.Fatalf("the node dropped the connection: %v", dc.err)
	default:
	}
}

// waitHandshake waits for the node to complete a handshake.
func (h *hostileNode) waitHandshake(d time.Duration, what string) peer.Info {
	h.t.Helper()
	select {
	case i := <-h.handshakes:
		return i
	case <-time.After(d):
		h.t.Fatalf("timed out after %s waiting for %s", d, what)
		return peer.Info{}
	}
}

// warnings returns the warnings logged so far whose command field is cmd.
func (h *hostileNode) warnings(cmd string) []*logrus.Entry {
	var out []*logrus.Entry
	for _, e := range h.logs.AllEntries() {
		if e.Level == logrus.WarnLevel && e.Data["command"] == cmd {
			out = append(out, e)
		}
	}
	return out
}

// hostileCheckErr checks that err is a *stages.Error naming peer, stage and
// command, wrapping one of wants, and that its message says so.
func hostileCheckErr(t *testing.T, err error, peerAddr, stage, cmd string, wants ...error) {
	t.Helper()
	t.Logf("connection ended with: %v", err)
	var se *stages.Error
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T) is not a *stages.Error", err, err)
	}
	if se.Peer != peerAddr || se.Stage != stage || se.Command != cmd {
		t.Errorf("error names peer %q, stage %q, command %q; want %q, %q, %q", se.Peer, se.Stage, se.Command, peerAddr, stage, cmd)
	}
	wrapped := false
	for _, w := range wants {
		wrapped = wrapped || errors.Is(err, w)
	}
	if !wrapped {
		t.Errorf("error %v wraps none of %v", err, wants)
	}
	msg := err.Error()
	for _, s := range []string{peerAddr, stage, cmd} {
		if !strings.Contains(msg, s) {
			t.Errorf("error message %q does not name %q", msg, s)
		}
	}
}

// hostileScript plays the fake peer's side of the first connection.
type hostileScript func(ctx context.Context, c *fakepeer.Conn) error

// hostileListen starts a fake peer whose first connection runs script
// (its result goes to the returned channel) and whose later connections
// behave: they complete the handshake and answer pings until closed.
func hostileListen(t *testing.T, script hostileScript) (*fakepeer.Peer, <-chan error) {
	t.Helper()
	result := make(chan error, 1)
	var conns atomic.Int32
	fp := fakepeer.Listen(t, &wire.Regtest, fakepeer.Options{Handler: func(ctx context.Context, c *fakepeer.Conn) {
		if conns.Add(1) == 1 {
			result <- script(ctx, c)
			return
		}
		hostileBehave(ctx, c)
	}})
	return fp, result
}

// hostileBehave is a well-behaved peer: handshake, then pongs for pings.
func hostileBehave(ctx context.Context, c *fakepeer.Conn) {
	if _, err := c.Handshake(ctx, fakepeer.HandshakeOpts{WTxIDRelay: true, SendAddrV2: true}); err != nil {
		return
	}
	for {
		m, err := c.Next(ctx)
		if err != nil {
			return
		}
		if p, ok := m.(*wire.Ping); ok {
			if c.Send(ctx, &wire.Pong{Nonce: p.Nonce}) != nil {
				return
			}
		}
	}
}

// hostileHandshake completes the fake peer's side of the handshake, then
// waits for the ping the node sends once its side is complete too, so that
// what the script sends next cannot reach the node in the same read as our
// verack (a connection that fails drops what was read with it).
func hostileHandshake(ctx context.Context, c *fakepeer.Conn) error {
	_, err := hostileHandshakePing(ctx, c)
	return err
}

// hostileHandshakePing is hostileHandshake, returning the node's ping.
func hostileHandshakePing(ctx context.Context, c *fakepeer.Conn) (*wire.Ping, error) {
	if _, err := c.Handshake(ctx, fakepeer.HandshakeOpts{WTxIDRelay: true, SendAddrV2: true}); err != nil {
		return nil, err
	}
	m, err := c.WaitFor(ctx, wire.CmdPing)
	if err != nil {
		return nil, err
	}
	return m.(*wire.Ping), nil
}

// hostileExpectClosed waits (up to d) for the node to close the connection.
func hostileExpectClosed(ctx context.Context, c *fakepeer.Conn, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if err := c.ExpectClosed(ctx); err != nil {
		return fmt.Errorf("the node did not close the connection: %w", err)
	}
	return nil
}

// hostilePingPong sends a ping and waits for the pong with its nonce: the
// connection is up and the node still answers.
func hostilePingPong(ctx context.Context, c *fakepeer.Conn, nonce uint64) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second) // a flood may still be draining
	defer cancel()
	if err := c.Send(ctx, &wire.Ping{Nonce: nonce, HasNonce: true}); err != nil {
		return err
	}
	for {
		m, err := c.WaitFor(ctx, wire.CmdPong)
		if err != nil {
			return err
		}
		if m.(*wire.Pong).Nonce == nonce {
			return nil
		}
	}
}

// hostileWait waits for the script's result.
func hostileWait(t *testing.T, result <-chan error, d time.Duration) {
	t.Helper()
	select {
	case err := <-result:
		if err != nil {
			t.Fatalf("fake peer: %v", err)
		}
	case <-time.After(d):
		t.Fatalf("fake peer's script did not finish within %s", d)
	}
}

// hostileDropCase is a case in which the peer's misbehaviour must end the
// connection: script plays the first connection (and must see the node
// close it), the node's error must match stage, cmd and want, and the node
// must then reconnect and complete a handshake with the well-behaved
// second connection. handshakeFirst says whether the script completes a
// handshake before misbehaving.
type hostileDropCase struct {
	script         hostileScript
	tweak          func(*peer.NodeConfig)
	handshakeFirst bool
	stage, cmd     string
	want           error
	// alsoWant, if set, is accepted in place of want.
	alsoWant    error
	allocBudget uint64
	peakBudget  uint64
	// check, if set, runs after the disconnect with the node.
	check func(t *testing.T, h *hostileNode, dc hostileDisconnect)
}

func hostileDrop(t *testing.T, tc hostileDropCase) {
	t.Helper()
	m := hostileMeasure(t)
	fp, result := hostileListen(t, tc.script)
	h := hostileStart(t, fp.Addr(), tc.tweak)
	if tc.handshakeFirst {
		h.waitHandshake(5*time.Second, "the first handshake")
	}
	dc := h.waitDisconnect(20 * time.Second)
	wants := []error{tc.want}
	if tc.alsoWant != nil {
		wants = append(wants, tc.alsoWant)
	}
	hostileCheckErr(t, dc.err, fp.Addr().String(), tc.stage, tc.cmd, wants...)
	hostileWait(t, result, 20*time.Second)
	if tc.check != nil {
		tc.check(t, h, dc)
	}
	h.running()
	info := h.waitHandshake(5*time.Second, "the handshake after reconnecting")
	if info.Addr != fp.Addr() {
		t.Errorf("reconnected to %s, want %s", info.Addr, fp.Addr())
	}
	if got := fp.Accepted(); got != 2 {
		t.Errorf("fake peer accepted %d connections, want 2", got)
	}
	h.running()
	h.stop()
	fp.Close()
	m.end(t, tc.allocBudget, tc.peakBudget)
}

// hostileStays runs a case in which the node must drop the bad message and
// keep the connection: script misbehaves, then checks a ping still gets its
// pong, then sends on ok and waits on release before closing. check runs
// while the connection is still up.
func hostileStays(t *testing.T, script func(ctx context.Context, c *fakepeer.Conn) error, allocBudget, peakBudget uint64,
	check func(t *testing.T, h *hostileNode)) {
	hostileStaysWith(t, nil, script, allocBudget, peakBudget, check)
}

// hostileStaysWith is hostileStays with the node's configuration tweaked.
func hostileStaysWith(t *testing.T, tweak func(*peer.NodeConfig), script func(ctx context.Context, c *fakepeer.Conn) error,
	allocBudget, peakBudget uint64, check func(t *testing.T, h *hostileNode)) {
	t.Helper()
	m := hostileMeasure(t)
	ok, release := make(chan struct{}), make(chan struct{})
	fp, result := hostileListen(t, func(ctx context.Context, c *fakepeer.Conn) error {
		if err := script(ctx, c); err != nil {
			return err
		}
		if err := hostilePingPong(ctx, c, 0x5eed); err != nil {
			return fmt.Errorf("no pong to a ping after the bad input: %w", err)
		}
		close(ok)
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	})
	h := hostileStart(t, fp.Addr(), tweak)
	h.waitHandshake(5*time.Second, "the handshake")
	select {
	case <-ok:
	case err := <-result:
		t.Fatalf("fake peer: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatalf("fake peer's script did not finish within 30s")
	}
	h.noDisconnect()
	if !h.node.Ready() {
		t.Errorf("Ready() = false with the connection up")
	}
	check(t, h)
	h.running()
	close(release)
	hostileWait(t, result, 5*time.Second)
	h.stop()
	fp.Close()
	if got := fp.Accepted(); got != 1 {
		t.Errorf("fake peer accepted %d connections, want 1 (no reconnect)", got)
	}
	m.end(t, allocBudget, peakBudget)
}

// hostileHeader returns a frame header of the regtest network declaring
// length bytes of payload.
func hostileHeader(cmd string, length uint32) []byte {
	h := wire.AppendFrame(nil, wire.Regtest.Magic, cmd, nil)
	binary.LittleEndian.PutUint32(h[16:20], length)
	return h
}

func TestHostileDeclaredLength(t *testing.T) {
	for _, length := range []uint32{wire.MaxPayload + 1, 0xFFFFFFFF} {
		t.Run(fmt.Sprint(length), func(t *testing.T) {
			hostileDrop(t, hostileDropCase{
				script: func(ctx context.Context, c *fakepeer.Conn) error {
					if err := hostileHandshake(ctx, c); err != nil {
						return err
					}
					// The header alone, connection held open: the node
					// must refuse it without waiting for the payload.
					if err := c.SendRaw(ctx, hostileHeader("block", length)); err != nil {
						return err
					}
					return hostileExpectClosed(ctx, c, 5*time.Second)
				},
				handshakeFirst: true,
				stage:          stages.StageFramer, cmd: "block", want: wire.ErrPayloadTooLarge,
				// Allocating the declared payload would take 3.8 MiB at least.
				allocBudget: 2 * hostileMiB, peakBudget: 1 * hostileMiB,
			})
		})
	}
}

func TestHostileRandomStream(t *testing.T) {
	const limit = 1 << 30
	var written atomic.Int64
	var writeErr error
	buf := make([]byte, 64*hostileKiB)
	rng := rand.NewChaCha8([32]byte{'b', 't', 'c', 'p', 'i', 'p', 'e'})
	hostileDrop(t, hostileDropCase{
		script: func(ctx context.Context, c *fakepeer.Conn) error {
			// 1 GiB of random bytes at full speed, until the node hangs up.
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			for written.Load() < limit {
				rng.Read(buf)
				if err := c.SendRaw(ctx, buf); err != nil {
					writeErr = err
					break
				}
				written.Add(int64(len(buf)))
			}
			if ctx.Err() != nil {
				return fmt.Errorf("still streaming after 10s (%d bytes written): the node did not hang up", written.Load())
			}
			return nil
		},
		stage: stages.StageFramer, cmd: "", want: wire.ErrBadMagic,
		allocBudget: 4 * hostileMiB, peakBudget: 4 * hostileMiB,
		check: func(t *testing.T, h *hostileNode, _ hostileDisconnect) {
			t.Logf("fake peer wrote %.2f MiB of its 1 GiB before the node hung up (%v); the node read %.1f KiB",
				float64(written.Load())/hostileMiB, writeErr, float64(h.bytesRead.Load())/hostileKiB)
			if writeErr == nil {
				t.Errorf("the fake peer's writes never failed")
			}
			if w := written.Load(); w >= 64*hostileMiB {
				t.Errorf("fake peer wrote %d bytes before the node hung up; want far below 1 GiB (< 64 MiB)", w)
			}
			// The framer refuses the first header; meanwhile the reader
			// may have read ahead, one 64 KiB slab at most per chunk:
			// the framer's, the 16 queued and the one it is sending.
			if r, max := h.bytesRead.Load(), int64(16+2)*stages.MinSlab; r > max {
				t.Errorf("the node read %d bytes of garbage, want at most %d", r, max)
			}
		},
	})
}

func TestHostileWrongMagic(t *testing.T) {
	hostileDrop(t, hostileDropCase{
		script: func(ctx context.Context, c *fakepeer.Conn) error {
			if err := hostileHandshake(ctx, c); err != nil {
				return err
			}
			// A well-formed ping, but of mainnet.
			if err := c.SendRaw(ctx, wire.AppendMessage(nil, wire.Mainnet.Magic, &wire.Ping{Nonce: 1, HasNonce: true})); err != nil {
				return err
			}
			return hostileExpectClosed(ctx, c, 5*time.Second)
		},
		handshakeFirst: true,
		// The header is not of our network, so its command is not trusted.
		stage: stages.StageFramer, cmd: "", want: wire.ErrBadMagic,
		allocBudget: 2 * hostileMiB, peakBudget: 1 * hostileMiB,
	})
}

// TestHostileLongPing: a peer declares a 3,999,999-byte ping and sends 60 KB
// of it. The header alone ends the connection (ping's limit is 8 bytes),
// at once, not after the 20-minute ping timeout; nothing of the payload is
// held.
func TestHostileLongPing(t *testing.T) {
	hostileDrop(t, hostileDropCase{
		script: func(ctx context.Context, c *fakepeer.Conn) error {
			if err := hostileHandshake(ctx, c); err != nil {
				return err
			}
			if err := c.SendRaw(ctx, append(hostileHeader(wire.CmdPing, 3_999_999), make([]byte, 60_000)...)); err != nil {
				return err
			}
			return hostileExpectClosed(ctx, c, 5*time.Second)
		},
		handshakeFirst: true,
		stage:          stages.StageFramer, cmd: wire.CmdPing, want: wire.ErrPayloadTooLarge,
		allocBudget: 2 * hostileMiB, peakBudget: 1 * hostileMiB,
	})
}

func TestHostileChecksumFlood(t *testing.T) {
	tests := []struct {
		name, cmd   string
		payload     int
		frames      int
		depth       int // pipeline queue depth; 0: the default
		allocBudget uint64
		peakBudget  uint64
		// maxMallocs bounds the allocations: none may be per frame.
		maxMallocs uint64
	}{
		// 3.2 MB of 32-byte pings: the per-frame cost.
		{name: "pings", cmd: wire.CmdPing, payload: 8, frames: 100_000, allocBudget: 16 * hostileMiB, peakBudget: 12 * hostileMiB, maxMallocs: 10_000},
		// 100 MB of 1 KiB addr frames (a command the session reads, so
		// each is held and hashed): far more than the node may hold.
		{name: "1 KiB addr frames", cmd: wire.CmdAddr, payload: 1000, frames: 100_000, allocBudget: hostileBudget(16*hostileMiB, 96*hostileMiB), peakBudget: 12 * hostileMiB, maxMallocs: hostileBudget(10_000, 40_000)},
		// 265 MB of the largest frames a session reads (addrv2 of 1,000
		// entries of the longest addresses, 531,003 bytes). The reader's
		// slabs grow to hold them, and every item queued between the
		// stages may hold one: what the node holds is bounded by the
		// queue depth, not by what the peer sends: with depth 2, about
		// (3 queues × 2 + 6 in the stages' hands) × 4 MiB slabs (8 times
		// the frame, rounded to a power of two) = 48 MiB live.
		{name: "largest addrv2 frames", cmd: wire.CmdAddrV2, payload: wire.MaxAddrV2Payload, frames: 500, depth: 2,
			allocBudget: hostileBudget(96*hostileMiB, 400*hostileMiB), peakBudget: hostileBudget(64*hostileMiB, 96*hostileMiB), maxMallocs: 10_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// One block of bad frames, sent again and again (built before
			// measuring).
			bad := wire.AppendFrame(nil, wire.Regtest.Magic, tt.cmd, make([]byte, tt.payload))
			bad[20] ^= 0xff
			frames := tt.frames
			perBlock := max(1, 64*hostileKiB/len(bad))
			block := bytes.Repeat(bad, perBlock)
			var mallocs uint64
			tweak := func(c *peer.NodeConfig) { c.Pipeline.QueueDepth = tt.depth }
			hostileStaysWith(t, tweak, func(ctx context.Context, c *fakepeer.Conn) error {
				if err := hostileHandshake(ctx, c); err != nil {
					return err
				}
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				mallocs = ms.Mallocs
				for sent := 0; sent < frames; sent += perBlock {
					b := block
					if left := frames - sent; left < perBlock {
						b = block[:left*len(bad)]
					}
					if err := c.SendRaw(ctx, b); err != nil {
						return err
					}
				}
				return nil
			}, tt.allocBudget, tt.peakBudget, func(t *testing.T, h *hostileNode) {
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				mallocs = ms.Mallocs - mallocs
				got := h.node.Counters.ChecksumFailures.Load()
				warns := h.warnings(tt.cmd)
				t.Logf("%d frames (%.1f MB) dropped and counted, %d warnings logged, %d allocations while they flowed",
					got, float64(frames)*float64(len(bad))/1e6, len(warns), mallocs)
				if got != int64(frames) {
					t.Errorf("checksum failures counted = %d, want %d", got, frames)
				}
				if mallocs > tt.maxMallocs {
					t.Errorf("%d allocations for %d dropped frames; want at most %d (none per frame)", mallocs, frames, tt.maxMallocs)
				}
				if len(warns) == 0 || len(warns) > 50 {
					t.Errorf("%d checksum warnings logged for %d bad frames; want some, rate-limited (≤ 50)", len(warns), frames)
				}
				if len(warns) > 0 {
					if e := warns[0]; e.Data["peer"] == nil || e.Data["stage"] != stages.StageVerifier {
						t.Errorf("checksum warning fields %v; want peer, stage %s and command", e.Data, stages.StageVerifier)
					}
				}
			})
		})
	}
}

// TestHostileUnwantedFlood: frames of commands the session does not read
// (blocks, transactions, commands nobody knows), however large, are
// skipped as their bytes arrive: counted, never held, never hashed, so
// 400 MB of 4 MB blocks with bad checksums cost a read buffer.
func TestHostileUnwantedFlood(t *testing.T) {
	tests := []struct {
		name, cmd   string
		payload     int
		frames      int
		allocBudget uint64
		peakBudget  uint64
	}{
		// (Under the race detector sync.Pool drops what it is given at
		// random, so the reader's slabs are made again: more is allocated,
		// and the garbage not yet collected shows in the heap.)
		{name: "4 MB blocks", cmd: wire.CmdBlock, payload: wire.MaxPayload, frames: 100,
			allocBudget: hostileBudget(4*hostileMiB, 160*hostileMiB), peakBudget: hostileBudget(4*hostileMiB, 24*hostileMiB)},
		{name: "1 KiB txs", cmd: wire.CmdTx, payload: 1000, frames: 100_000,
			allocBudget: hostileBudget(4*hostileMiB, 64*hostileMiB), peakBudget: hostileBudget(4*hostileMiB, 16*hostileMiB)},
		{name: "unknown command", cmd: "xyzzy", payload: 100_000, frames: 1000,
			allocBudget: hostileBudget(4*hostileMiB, 64*hostileMiB), peakBudget: hostileBudget(4*hostileMiB, 16*hostileMiB)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := wire.AppendFrame(nil, wire.Regtest.Magic, tt.cmd, make([]byte, tt.payload))
			bad[20] ^= 0xff
			perBlock := max(1, 64*hostileKiB/len(bad))
			block := bytes.Repeat(bad, perBlock)
			hostileStays(t, func(ctx context.Context, c *fakepeer.Conn) error {
				if err := hostileHandshake(ctx, c); err != nil {
					return err
				}
				for sent := 0; sent < tt.frames; sent += perBlock {
					b := block
					if left := tt.frames - sent; left < perBlock {
						b = block[:left*len(bad)]
					}
					if err := c.SendRaw(ctx, b); err != nil {
						return err
					}
				}
				return nil
			}, tt.allocBudget, tt.peakBudget, func(t *testing.T, h *hostileNode) {
				// The fake peer's handshake also sends sendaddrv2 and
				// wtxidrelay, which the session does not read either.
				if got, want := h.node.Counters.FramesSkipped.Load(), int64(tt.frames)+2; got != want {
					t.Errorf("frames skipped = %d, want %d", got, want)
				}
				if got := h.node.Counters.ChecksumFailures.Load(); got != 0 {
					t.Errorf("checksum failures = %d: skipped frames were hashed", got)
				}
			})
		})
	}
}

// hostileSlowloris plays a peer that sends its version one byte at a time.
func hostileSlowloris(t *testing.T, every, timeout time.Duration) {
	var sent atomic.Int32
	hostileDrop(t, hostileDropCase{
		script: func(ctx context.Context, c *fakepeer.Conn) error {
			closed := make(chan error, 1)
			go func() { closed <- hostileExpectClosed(ctx, c, timeout+5*time.Second) }()
			frame := wire.AppendMessage(nil, c.Magic(), c.Version(fakepeer.HandshakeOpts{}))
			for _, b := range frame {
				if err := c.SendRaw(ctx, []byte{b}); err != nil {
					break // the node hung up
				}
				sent.Add(1)
				select {
				case <-time.After(every):
					continue
				case err := <-closed:
					return err
				}
			}
			if err := <-closed; err != nil {
				return err
			}
			if int(sent.Load()) == len(frame) {
				return fmt.Errorf("sent the whole version (%d bytes) before the node hung up", len(frame))
			}
			return nil
		},
		tweak: func(c *peer.NodeConfig) { c.Session.HandshakeTimeout = timeout },
		stage: "session", cmd: "version", want: peer.ErrHandshakeTimeout,
		allocBudget: 2 * hostileMiB, peakBudget: 1 * hostileMiB,
		check: func(t *testing.T, h *hostileNode, dc hostileDisconnect) {
			var at time.Time
			select {
			case at = <-h.connected:
			default:
				t.Fatalf("no connection recorded")
			}
			took := dc.at.Sub(at)
			t.Logf("handshake timeout after %s, %d bytes of the version trickled in", took.Round(time.Millisecond), sent.Load())
			if took < timeout || took > timeout+3*time.Second {
				t.Errorf("connection dropped %s after it opened, want the handshake timeout (%s)", took, timeout)
			}
		},
	})
}

func TestHostileSlowloris(t *testing.T) {
	t.Run("1 byte per 100ms, 300ms timeout", func(t *testing.T) { hostileSlowloris(t, 100*time.Millisecond, 300*time.Millisecond) })
	t.Run("1 byte per second, 2s timeout", func(t *testing.T) { hostileSlowloris(t, time.Second, 2*time.Second) })
}

func TestHostilePingFloodNoReads(t *testing.T) {
	const perWrite = 1000
	batch := make([]byte, 0, perWrite*32)
	for i := range perWrite {
		batch = wire.AppendMessage(batch, wire.Regtest.Magic, &wire.Ping{Nonce: uint64(i), HasNonce: true})
	}
	var pings atomic.Int64
	hostileDrop(t, hostileDropCase{
		script: func(ctx context.Context, c *fakepeer.Conn) error {
			if err := hostileHandshake(ctx, c); err != nil {
				return err
			}
			// 100k pings (more if need be) as fast as the node takes
			// them, never reading a pong.
			ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			for {
				if err := c.SendRaw(ctx, batch); err != nil {
					if ctx.Err() != nil {
						return fmt.Errorf("the node neither hung up nor kept reading within 15s (%d pings sent)", pings.Load())
					}
					return nil // the node hung up
				}
				pings.Add(perWrite)
			}
		},
		tweak: func(c *peer.NodeConfig) {
			c.Pipeline.Options.WriteTimeout = 500 * time.Millisecond
		},
		handshakeFirst: true,
		stage:          stages.StageWriter, cmd: wire.CmdPong, want: os.ErrDeadlineExceeded,
		// The queues between the stages hold at most 3×16 batches of
		// a 64 KiB slab's worth of frames, and 16 pongs.
		allocBudget: 32 * hostileMiB, peakBudget: hostileBudget(16*hostileMiB, 24*hostileMiB),
		check: func(t *testing.T, h *hostileNode, _ hostileDisconnect) {
			t.Logf("fake peer sent %d pings (and read none) before the node's write timed out; the node sent %d frames",
				pings.Load(), h.node.Counters.FramesOut.Load())
			// Unblocked, the fake peer writes millions of pings a
			// second; the node's back-pressure (it stops reading while
			// its writes are stuck) must have held it to far fewer.
			if p := pings.Load(); p < 100_000 || p > 2_000_000 {
				t.Errorf("fake peer sent %d pings; want at least the 100k of the case and, held back, at most 2M", p)
			}
		},
	})
}

// hostileAddrPayload returns an addr payload of count entries, with the
// count encoded as countBytes when that is set.
func hostileAddrPayload(entries int, countBytes []byte) []byte {
	p := countBytes
	if p == nil {
		p = wire.AppendVarInt(nil, uint64(entries))
	}
	for i := range entries {
		p = wire.AppendTimedNetAddr(p, wire.TimedNetAddr{Time: 1700000000, NetAddr: wire.NetAddr{
			Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{11, byte(i >> 8), byte(i), 1}), 8333)}})
	}
	return p
}

// hostileDropped checks that exactly one cmd message was dropped as
// malformed, wrapping want, with a warning naming peer, stage and command,
// and that the connection stayed up.
func hostileDropped(t *testing.T, script func(ctx context.Context, c *fakepeer.Conn) error, cmd string, want error, allocBudget uint64) {
	hostileStays(t, func(ctx context.Context, c *fakepeer.Conn) error {
		if err := hostileHandshake(ctx, c); err != nil {
			return err
		}
		return script(ctx, c)
	}, allocBudget, 1*hostileMiB, func(t *testing.T, h *hostileNode) {
		if got := h.node.Counters.DecodeFailures.Load(); got != 1 {
			t.Errorf("decode failures counted = %d, want 1", got)
		}
		if got := h.node.Book.Len(); got != 0 {
			t.Errorf("address book holds %d addresses from a malformed message", got)
		}
		warns := h.warnings(cmd)
		if len(warns) != 1 {
			t.Fatalf("%d warnings about %s logged, want 1", len(warns), cmd)
		}
		e := warns[0]
		t.Logf("logged: %s %v", e.Message, e.Data)
		if e.Data["peer"] == nil || e.Data["stage"] != stages.StageDispatcher {
			t.Errorf("warning fields %v; want peer, stage %s and command %s", e.Data, stages.StageDispatcher, cmd)
		}
		if err, _ := e.Data[logrus.ErrorKey].(error); !errors.Is(err, want) {
			t.Errorf("warning's error %v does not wrap %v", err, want)
		}
	})
}

// TestHostileAddrTooManyEntries: more than 1,000 addresses end the
// connection, as Bitcoin Core disconnects (and discourages) such a peer:
// refused at the header when the payload is longer than 1,000 entries can
// be, or when the count says more than 1,000.
func TestHostileAddrTooManyEntries(t *testing.T) {
	tests := []struct {
		name    string
		payload []byte
		stage   string
		want    error
	}{
		{"1001 entries", hostileAddrPayload(1001, nil), stages.StageFramer, wire.ErrPayloadTooLarge},
		{"2^32 entries claimed", wire.AppendVarInt(nil, 1<<32), stages.StageDispatcher, wire.ErrTooManyEntries},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hostileDrop(t, hostileDropCase{
				script: func(ctx context.Context, c *fakepeer.Conn) error {
					if err := hostileHandshake(ctx, c); err != nil {
						return err
					}
					if err := c.SendFrame(ctx, wire.CmdAddr, tt.payload); err != nil {
						return err
					}
					return hostileExpectClosed(ctx, c, 5*time.Second)
				},
				handshakeFirst: true,
				stage:          tt.stage, cmd: wire.CmdAddr, want: tt.want,
				allocBudget: 2 * hostileMiB, peakBudget: 1 * hostileMiB,
				check: func(t *testing.T, h *hostileNode, _ hostileDisconnect) {
					if got := h.node.Book.Len(); got != 0 {
						t.Errorf("address book holds %d addresses from an addr over the limit", got)
					}
				},
			})
		})
	}
}

func TestHostileNonCanonicalVarInt(t *testing.T) {
	// addrv2: 1 entry counted in five bytes, then the entry: time,
	// services 0, IPv4 1.2.3.4 port 8333. (inv is not a command the
	// session reads: it is skipped unread, so it cannot be malformed.)
	addrv2 := []byte{0xfe, 1, 0, 0, 0, 0, 0, 0, 0, 0, byte(wire.NetIPv4), 4, 1, 2, 3, 4, 0x20, 0x8d}
	tests := []struct {
		name, cmd string
		payload   []byte
	}{
		{"addr count 1 in three bytes", wire.CmdAddr, hostileAddrPayload(1, []byte{0xfd, 1, 0})},
		{"addrv2 count 1 in five bytes", wire.CmdAddrV2, addrv2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hostileDropped(t, func(ctx context.Context, c *fakepeer.Conn) error {
				return c.SendFrame(ctx, tt.cmd, tt.payload)
			}, tt.cmd, wire.ErrNonCanonicalVarInt, 2*hostileMiB)
		})
	}
	// In a version it is fatal: the handshake cannot go on.
	t.Run("version user agent length in three bytes", func(t *testing.T) {
		hostileDrop(t, hostileDropCase{
			script: hostileBadVersion(func(p []byte) []byte {
				return append(append(p, 0xfd, 5, 0), "/bad/"...)
			}),
			stage: stages.StageDispatcher, cmd: wire.CmdVersion, want: wire.ErrNonCanonicalVarInt,
			allocBudget: 2 * hostileMiB, peakBudget: 1 * hostileMiB,
		})
	})
}

// hostileBadVersion returns a script that answers the node's version with
// a version whose payload is built by tail from the fields up to the nonce.
func hostileBadVersion(tail func(p []byte) []byte) hostileScript {
	return func(ctx context.Context, c *fakepeer.Conn) error {
		if _, err := c.Expect(ctx, wire.CmdVersion); err != nil {
			return err
		}
		v := c.Version(fakepeer.HandshakeOpts{})
		p := v.AppendPayload(nil)
		p = p[:4+8+8+2*wire.NetAddrSize+8] // up to and including the nonce
		p = tail(p)
		if err := c.SendFrame(ctx, wire.CmdVersion, p); err != nil {
			return err
		}
		return hostileExpectClosed(ctx, c, 5*time.Second)
	}
}

func TestHostileVersionUserAgent10MB(t *testing.T) {
	hostileDrop(t, hostileDropCase{
		script: hostileBadVersion(func(p []byte) []byte {
			p = wire.AppendVarInt(p, 10_000_000)
			return append(p, "/only a few bytes follow/"...)
		}),
		stage: stages.StageDispatcher, cmd: wire.CmdVersion, want: wire.ErrStringTooLong,
		// Allocating the declared user agent would take 9.5 MiB.
		allocBudget: 2 * hostileMiB, peakBudget: 1 * hostileMiB,
	})
}

func TestHostileTwoVersions(t *testing.T) {
	t.Run("after the handshake", func(t *testing.T) {
		hostileDrop(t, hostileDropCase{
			script: func(ctx context.Context, c *fakepeer.Conn) error {
				if err := hostileHandshake(ctx, c); err != nil {
					return err
				}
				if err := c.Send(ctx, c.Version(fakepeer.HandshakeOpts{})); err != nil {
					return err
				}
				return hostileExpectClosed(ctx, c, 5*time.Second)
			},
			handshakeFirst: true,
			stage:          stages.StageDispatcher, cmd: wire.CmdVersion, want: peer.ErrDuplicateVersion,
			allocBudget: 2 * hostileMiB, peakBudget: 1 * hostileMiB,
		})
	})
	t.Run("back to back", func(t *testing.T) {
		hostileDrop(t, hostileDropCase{
			script: func(ctx context.Context, c *fakepeer.Conn) error {
				v := wire.AppendMessage(nil, c.Magic(), c.Version(fakepeer.HandshakeOpts{}))
				if err := c.SendRaw(ctx, append(v, v...)); err != nil {
					return err
				}
				return hostileExpectClosed(ctx, c, 5*time.Second)
			},
			stage: stages.StageDispatcher, cmd: wire.CmdVersion, want: peer.ErrDuplicateVersion,
			allocBudget: 2 * hostileMiB, peakBudget: 1 * hostileMiB,
		})
	})
}

func TestHostilePongWrongNonce(t *testing.T) {
	// A wrong nonce is ignored (as btcd does); the right one, even right
	// behind it, still counts.
	t.Run("ignored", func(t *testing.T) {
		hostileStays(t, func(ctx context.Context, c *fakepeer.Conn) error {
			ping, err := hostileHandshakePing(ctx, c)
			if err != nil {
				return err
			}
			nonce := ping.Nonce
			wrong := wire.AppendMessage(nil, c.Magic(), &wire.Pong{Nonce: nonce ^ 1})
			right := wire.AppendMessage(nil, c.Magic(), &wire.Pong{Nonce: nonce})
			return c.SendRaw(ctx, append(append(wrong, wrong...), right...))
		}, 2*hostileMiB, 1*hostileMiB, func(t *testing.T, h *hostileNode) {
			select {
			case rtt := <-h.pongs:
				t.Logf("the right pong counted (round trip %s) after two wrong ones", rtt)
			case <-time.After(2 * time.Second):
				t.Errorf("the pong with our nonce, right behind two with wrong nonces, was not counted")
			}
			select {
			case rtt := <-h.pongs:
				t.Errorf("a second pong counted (round trip %s); only one carried our nonce", rtt)
			default:
			}
		})
	})
	t.Run("only wrong nonces", func(t *testing.T) {
		hostileDrop(t, hostileDropCase{
			script: func(ctx context.Context, c *fakepeer.Conn) error {
				ping, err := hostileHandshakePing(ctx, c)
				if err != nil {
					return err
				}
				if err := c.Send(ctx, &wire.Pong{Nonce: ping.Nonce + 1}); err != nil {
					return err
				}
				return hostileExpectClosed(ctx, c, 5*time.Second)
			},
			tweak:          func(c *peer.NodeConfig) { c.Session.PingTimeout = 300 * time.Millisecond },
			handshakeFirst: true,
			stage:          "session", cmd: "ping", want: peer.ErrPingTimeout,
			allocBudget: 2 * hostileMiB, peakBudget: 1 * hostileMiB,
		})
	})
}

func TestHostileCloseMidFrame(t *testing.T) {
	ping := wire.AppendMessage(nil, wire.Regtest.Magic, &wire.Ping{Nonce: 3, HasNonce: true})
	for _, cut := range []int{10, wire.HeaderSize + 3} {
		t.Run(fmt.Sprintf("after %d of %d bytes", cut, len(ping)), func(t *testing.T) {
			hostileDrop(t, hostileDropCase{
				script: func(ctx context.Context, c *fakepeer.Conn) error {
					if err := hostileHandshake(ctx, c); err != nil {
						return err
					}
					return c.SendRaw(ctx, ping[:cut]) // then the handler returns: closed
				},
				handshakeFirst: true,
				// EOF, or a reset when the fake peer closed with bytes
				// from the node unread (Linux then sends RST, not FIN).
				stage: stages.StageReader, cmd: "", want: io.EOF, alsoWant: syscall.ECONNRESET,
				allocBudget: 2 * hostileMiB, peakBudget: 1 * hostileMiB,
			})
		})
	}
}
