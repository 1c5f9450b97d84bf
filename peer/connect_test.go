package peer_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/btcpipe/btcpipe/internal/fakepeer"
	"github.com/btcpipe/btcpipe/peer"
	"github.com/btcpipe/btcpipe/pipeline"
	"github.com/btcpipe/btcpipe/wire"
)

// echoListener accepts loopback connections and sends back every byte it
// reads: a node connecting to it meets its own version, as if it had
// connected to itself.
func echoListener(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// oldPeer answers the node's version with one of protocol 60000.
func oldPeer(ctx context.Context, c *fakepeer.Conn) {
	if _, err := c.Expect(ctx, wire.CmdVersion); err != nil {
		return
	}
	_ = c.Send(ctx, c.Version(fakepeer.HandshakeOpts{Protocol: 60000}))
	_ = c.ExpectClosed(ctx)
}

func TestNodeStopsOnWhatCannotSucceed(t *testing.T) {
	tests := []struct {
		name    string
		handler func(context.Context, *fakepeer.Conn)
		tweak   func(t *testing.T, c *peer.NodeConfig)
		want    error
	}{
		{name: "protocol too old", handler: oldPeer, want: peer.ErrVersionTooOld},
		{
			name: "connection to ourselves",
			tweak: func(t *testing.T, c *peer.NodeConfig) {
				c.Peer = echoListener(t).String()
			},
			want: peer.ErrSelfConnection,
		},
		{
			name:  "pipeline cannot be built",
			tweak: func(_ *testing.T, c *peer.NodeConfig) { c.Pipeline.Framer = "no-such-framer" },
			want:  peer.ErrPipeline,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := startFakeNode(t, tt.handler, func(c *peer.NodeConfig) {
				if tt.tweak != nil {
					tt.tweak(t, c)
				}
			})
			err := next(t, r.done, "Node.Run to return")
			r.done <- err
			if !errors.Is(err, tt.want) {
				t.Fatalf("Node.Run = %v, want an error wrapping %q", err, tt.want)
			}
			if !peer.Permanent(err) {
				t.Errorf("Permanent(%v) = false, want true", err)
			}
			if n := len(r.connected); n != 1 {
				t.Errorf("%d connections, want 1 (no retry)", n)
			}
			if n := len(r.reconnects); n != 0 {
				t.Errorf("%d reconnect waits, want none", n)
			}
			if n := len(r.disconnected); n != 1 {
				t.Errorf("Disconnected called %d times, want once (as often as Connected)", n)
			}
		})
	}
}

func TestPermanent(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{err: peer.ErrVersionTooOld, want: true},
		{err: peer.ErrSelfConnection, want: true},
		{err: peer.ErrPipeline, want: true},
		{err: &peer.DialError{Err: syscall.ECONNREFUSED}, want: false},
		{err: peer.ErrHandshakeTimeout, want: false},
		{err: peer.ErrPingTimeout, want: false},
		{err: io.EOF, want: false},
		{err: nil, want: false},
	}
	for _, tt := range tests {
		if got := peer.Permanent(tt.err); got != tt.want {
			t.Errorf("Permanent(%v) = %t, want %t", tt.err, got, tt.want)
		}
	}
}

func TestDialerConnect(t *testing.T) {
	ctx := testCtx(t)
	fake := fakepeer.Listen(t, &wire.Regtest, fakepeer.Options{Handler: func(ctx context.Context, c *fakepeer.Conn) {
		if _, err := c.Handshake(ctx, fakepeer.HandshakeOpts{UserAgent: "/fake:3/", SendAddrV2: true}); err != nil {
			return
		}
		if _, err := c.WaitFor(ctx, wire.CmdGetAddr); err != nil {
			return
		}
		_ = c.Send(ctx, &wire.AddrV2{List: []wire.NetAddrV2{wire.NetAddrV2FromAddrPort(netip.MustParseAddrPort("1.2.3.4:8333"), 0, 1)}})
		c.Close()
	}})
	d := &peer.Dialer{Session: testConfig(), Timeout: time.Second}
	var started, addrs int
	var latency time.Duration
	out := d.Connect(ctx, fake.Addr(), nullLog(), peer.ConnectHooks{
		Hooks:     peer.Hooks{Addrs: func(list []wire.NetAddrV2) { addrs += len(list) }},
		Connected: func(l time.Duration) { latency = l },
		Started:   func(*pipeline.Pipeline) { started++ },
	})
	if !out.Connected || !out.Handshook || !out.VersionSeen {
		t.Errorf("Connected, Handshook, VersionSeen = %t, %t, %t; want all true", out.Connected, out.Handshook, out.VersionSeen)
	}
	if out.Addr != fake.Addr() || out.Info.Addr != fake.Addr() {
		t.Errorf("Addr = %v, Info.Addr = %v; want %v", out.Addr, out.Info.Addr, fake.Addr())
	}
	if got := out.Info.Version.UserAgent; got != "/fake:3/" {
		t.Errorf("Info.Version.UserAgent = %q, want /fake:3/", got)
	}
	if out.ConnectLatency <= 0 || out.ConnectLatency != latency {
		t.Errorf("ConnectLatency = %s, hook saw %s; want the same, positive", out.ConnectLatency, latency)
	}
	if out.Info.HandshakeLatency <= 0 {
		t.Errorf("Info.HandshakeLatency = %s, want > 0", out.Info.HandshakeLatency)
	}
	if started != 1 || addrs != 1 {
		t.Errorf("Started called %d times, %d addresses seen; want 1 and 1", started, addrs)
	}
	// In: version, sendaddrv2, verack, addrv2 (at least 4 headers); out:
	// version, wtxidrelay, sendaddrv2, verack, getaddr, ping.
	if out.BytesIn < 4*wire.HeaderSize || out.BytesOut < 6*wire.HeaderSize {
		t.Errorf("BytesIn, BytesOut = %d, %d; want at least %d, %d", out.BytesIn, out.BytesOut, 4*wire.HeaderSize, 6*wire.HeaderSize)
	}
	if out.Err == nil || peer.Permanent(out.Err) {
		t.Errorf("Err = %v, want the peer's close (not permanent)", out.Err)
	}
}

func TestDialerConnectDialFailure(t *testing.T) {
	ctx := testCtx(t)
	addr := netip.MustParseAddrPort("127.0.0.1:9")
	d := &peer.Dialer{
		Session: testConfig(),
		Dial: func(context.Context, netip.AddrPort) (net.Conn, error) {
			return nil, syscall.ECONNREFUSED
		},
	}
	connected := false
	out := d.Connect(ctx, addr, nil, peer.ConnectHooks{Connected: func(time.Duration) { connected = true }})
	var de *peer.DialError
	if !errors.As(out.Err, &de) || de.Addr != addr || !errors.Is(out.Err, syscall.ECONNREFUSED) {
		t.Fatalf("Err = %v, want a *DialError for %v wrapping ECONNREFUSED", out.Err, addr)
	}
	if out.Connected || connected || out.Handshook {
		t.Errorf("Connected = %t, hook called = %t, Handshook = %t; want all false", out.Connected, connected, out.Handshook)
	}
	if got, want := out.Err.Error(), "peer 127.0.0.1:9: connect: connection refused"; got != want {
		t.Errorf("Err = %q, want %q", got, want)
	}
}

func TestDialerConnectTimeout(t *testing.T) {
	ctx := testCtx(t)
	d := &peer.Dialer{
		Session: testConfig(),
		Timeout: 20 * time.Millisecond,
		Dial: func(ctx context.Context, _ netip.AddrPort) (net.Conn, error) {
			<-ctx.Done() // a connect that never completes
			return nil, ctx.Err()
		},
	}
	out := d.Connect(ctx, netip.MustParseAddrPort("127.0.0.1:9"), nil, peer.ConnectHooks{})
	if !errors.Is(out.Err, context.DeadlineExceeded) || out.Connected {
		t.Errorf("Connected = %t, Err = %v; want false and a deadline", out.Connected, out.Err)
	}
	if ctx.Err() != nil {
		t.Errorf("the test's context ended: the dial timeout did not apply")
	}
}
