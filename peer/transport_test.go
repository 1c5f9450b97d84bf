package peer_test

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/btcpipe/btcpipe/bip324"
	"github.com/btcpipe/btcpipe/internal/fakepeer"
	"github.com/btcpipe/btcpipe/peer"
	"github.com/btcpipe/btcpipe/pipeline"
	"github.com/btcpipe/btcpipe/stages"
	"github.com/btcpipe/btcpipe/wire"
)

// v1Peer completes the v1 handshake and closes; bytes that are not v1
// (our v2 key) make fakepeer close at once, as a v1-only node does.
func v1Peer(ctx context.Context, c *fakepeer.Conn) {
	_, _ = c.Handshake(ctx, fakepeer.HandshakeOpts{UserAgent: "/v1only:1/"})
}

func TestDialerTransports(t *testing.T) {
	for _, tc := range []struct {
		name      string
		transport string
		noV2      bool
		known     bool // the address is in KnownV1 already
		// want: TCP connections accepted, the transport of the outcome,
		// FellBack, whether the address is then in KnownV1, Handshook.
		accepts   int
		transp    string
		fellBack  bool
		remember  bool
		handshook bool
	}{
		{name: "auto falls back", transport: peer.TransportAuto, accepts: 2, transp: "v1", fellBack: true, remember: true, handshook: true},
		{name: "auto, known v1", transport: peer.TransportAuto, known: true, accepts: 1, transp: "v1", remember: true, handshook: true},
		{name: "auto, no NODE_P2P_V2", transport: peer.TransportAuto, noV2: true, accepts: 1, transp: "v1", handshook: true},
		{name: "v1", transport: peer.TransportV1, accepts: 1, transp: "v1", handshook: true},
		{name: "v2 only", transport: peer.TransportV2, accepts: 1, transp: "v2"},
		{name: "pipeline's own", transport: "", accepts: 1, transp: "v1", handshook: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			fake := fakepeer.Listen(t, &wire.Regtest, fakepeer.Options{Handler: v1Peer})
			known := new(peer.AddrSet)
			if tc.known {
				known.Add(fake.Addr())
			}
			connected := 0
			d := &peer.Dialer{Session: testConfig(), Timeout: time.Second, Transport: tc.transport, KnownV1: known}
			if tc.transport != peer.TransportV2 {
				// v1 overrides: auto drops them for its v2 attempt.
				d.Pipeline = pipeline.Config{Framer: pipeline.FramerSlab, Verifier: pipeline.VerifierSequential}
			}
			out := d.Connect(ctx, fake.Addr(), nullLog(), peer.ConnectHooks{NoV2: tc.noV2, Connected: func(time.Duration) { connected++ }})
			if got := fake.Accepted(); got != tc.accepts {
				t.Errorf("%d connections accepted, want %d", got, tc.accepts)
			}
			if out.Transport != tc.transp || out.FellBack != tc.fellBack || out.Handshook != tc.handshook {
				t.Errorf("Transport %q FellBack %t Handshook %t, want %q %t %t (err %v)",
					out.Transport, out.FellBack, out.Handshook, tc.transp, tc.fellBack, tc.handshook, out.Err)
			}
			if got := known.Has(fake.Addr()); got != tc.remember {
				t.Errorf("KnownV1 has the address: %t, want %t", got, tc.remember)
			}
			if connected != 1 {
				t.Errorf("Connected hook called %d times, want 1", connected)
			}
			if tc.transp == "v1" && out.Info.Transport != "v1" {
				t.Errorf("Info.Transport = %q, want v1", out.Info.Transport)
			}
			if tc.transport == peer.TransportV2 {
				var se *stages.Error
				if !errors.As(out.Err, &se) || se.Stage != pipeline.StageHandshake || !bip324.FallBackToV1(out.Err) {
					t.Errorf("err %v, want a handshake error that says v1", out.Err)
				}
			}
		})
	}
}

// TestDialerV2WithV1Framer: under an explicit v2 policy a v1 stage
// override is an error (ErrPipeline), not silently dropped.
func TestDialerV2WithV1Framer(t *testing.T) {
	ctx := testCtx(t)
	fake := fakepeer.Listen(t, &wire.Regtest, fakepeer.Options{Handler: v1Peer})
	d := &peer.Dialer{Session: testConfig(), Timeout: time.Second, Transport: peer.TransportV2,
		Pipeline: pipeline.Config{Framer: pipeline.FramerCopy}}
	out := d.Connect(ctx, fake.Addr(), nullLog(), peer.ConnectHooks{})
	if !errors.Is(out.Err, peer.ErrPipeline) {
		t.Errorf("err %v, want ErrPipeline", out.Err)
	}
}

// TestDialerAutoStall: a peer that accepts and says nothing is not
// retried with v1 (Core does not either): the v2 handshake times out after
// the session's handshake timeout.
func TestDialerAutoStall(t *testing.T) {
	ctx := testCtx(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	cfg := testConfig()
	cfg.HandshakeTimeout = 300 * time.Millisecond
	d := &peer.Dialer{Session: cfg, Timeout: time.Second, Transport: peer.TransportAuto, KnownV1: new(peer.AddrSet)}
	begin := time.Now()
	addr := ln.Addr().(*net.TCPAddr).AddrPort()
	out := d.Connect(ctx, addr, nullLog(), peer.ConnectHooks{})
	took := time.Since(begin)
	ln.Close()
	n := 0
	for c := range accepted {
		c.Close()
		n++
	}
	if n != 1 || out.FellBack || !errors.Is(out.Err, os.ErrDeadlineExceeded) || took > 3*time.Second {
		t.Errorf("%d connections, FellBack %t, err %v after %s; want 1, false, a deadline after 300ms", n, out.FellBack, out.Err, took)
	}
	if d.KnownV1.Has(addr) {
		t.Error("a stalled peer is remembered as v1")
	}
}
