package netreach_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/btcpipe/btcpipe/internal/fakepeer"
	"github.com/btcpipe/btcpipe/internal/fakesam"
	"github.com/btcpipe/btcpipe/internal/fakesocks"
	"github.com/btcpipe/btcpipe/netreach"
	"github.com/btcpipe/btcpipe/peer"
	"github.com/btcpipe/btcpipe/pipeline"
	"github.com/btcpipe/btcpipe/stages"
	"github.com/btcpipe/btcpipe/wire"
)

// TestHandshakeThroughProxies dials a fake Bitcoin peer by .onion name
// through fakesocks and by .b32.i2p name through fakesam, and runs the
// version handshake and a getaddr over each with btcpipe's own session and
// pipeline.
func TestHandshakeThroughProxies(t *testing.T) {
	noDNS(t)
	fp := fakepeer.Listen(t, &wire.Regtest, fakepeer.Options{})
	proxy := fakesocks.Start(t, fakesocks.Options{})
	bridge := fakesam.Start(t)
	var rec dialRecorder
	d, err := netreach.New(netreach.Config{TorProxy: proxy.Addr().String(), I2PSAM: bridge.Addr().String(),
		Direct: rec.directDial, ProxyDial: rec.proxyDial})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	tests := []struct {
		name string
		addr wire.NetAddrV2
	}{
		{"tor", proxy.AddOnion(fp.Addr(), 18444)},
		{"i2p", bridge.AddNode(fp.Addr())},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			conn, err := d.Dial(ctx, tt.addr)
			if err != nil {
				t.Fatal(err)
			}
			fc, err := fp.Accept(ctx)
			if err != nil {
				conn.Close()
				t.Fatal(err)
			}
			handshook := make(chan peer.Info, 1)
			addrs := make(chan int, 1)
			cfg := peer.DefaultConfig(&wire.Regtest)
			cfg.HandshakeTimeout = 5 * time.Second
			// Through a proxy the peer's address is a name: addr_you goes
			// out empty, as Bitcoin Core sends it for proxied peers.
			sess := peer.NewSession(cfg, netip.AddrPort{}, nullLog(), peer.Hooks{
				Handshake: func(i peer.Info) { handshook <- i },
				Addrs:     func(l []wire.NetAddrV2) { addrs <- len(l) },
			}, nil)
			pl, err := pipeline.New(conn, conn, conn, sess, pipeline.Config{
				Options: stages.Options{Peer: tt.addr.String(), Magic: wire.Regtest.Magic},
			})
			if err != nil {
				conn.Close()
				t.Fatal(err)
			}
			runCtx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- pl.Run(runCtx) }()
			defer func() { cancel(); <-done }()

			v, err := fc.Handshake(ctx, fakepeer.HandshakeOpts{SendAddrV2: true, UserAgent: "/fake-" + tt.name + ":1/"})
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			if v.UserAgent == "" {
				t.Error("our version carried no user agent")
			}
			select {
			case i := <-handshook:
				if i.Version.UserAgent != "/fake-"+tt.name+":1/" {
					t.Errorf("handshake with %q, want the fake's", i.Version.UserAgent)
				}
			case <-ctx.Done():
				t.Fatal("the session did not complete the handshake")
			}
			if _, err := fc.WaitFor(ctx, wire.CmdGetAddr); err != nil {
				t.Fatalf("waiting for getaddr: %v", err)
			}
			onion := fakesocks.RandomOnion(8333)
			if err := fc.Send(ctx, &wire.AddrV2{List: []wire.NetAddrV2{onion}}); err != nil {
				t.Fatal(err)
			}
			select {
			case n := <-addrs:
				if n != 1 {
					t.Errorf("got %d addresses, want 1", n)
				}
			case <-ctx.Done():
				t.Fatal("the addrv2 did not arrive through the proxy")
			}
		})
	}
	if n := len(rec.directCalls()); n != 0 {
		t.Errorf("%d direct dials, want 0", n)
	}
	noNames(t, rec.proxyCalls())
}

func nullLog() *logrus.Entry {
	l, _ := logtest.NewNullLogger()
	return logrus.NewEntry(l)
}
