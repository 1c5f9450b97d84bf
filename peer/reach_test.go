package peer_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/btcpipe/btcpipe/internal/fakepeer"
	"github.com/btcpipe/btcpipe/internal/fakesam"
	"github.com/btcpipe/btcpipe/internal/fakesocks"
	"github.com/btcpipe/btcpipe/netreach"
	"github.com/btcpipe/btcpipe/peer"
)

// handshakeOnly completes the handshake and holds the connection.
func handshakeOnly(ctx context.Context, c *fakepeer.Conn) {
	if _, err := c.Handshake(ctx, fakepeer.HandshakeOpts{Lenient: true}); err != nil {
		return
	}
	for {
		if _, err := c.Next(ctx); err != nil {
			return
		}
	}
}

// TestNodeReachesOnionAndI2P: a peer ….onion:8333 is reached through the
// Tor SOCKS proxy by name, ….b32.i2p:0 through the SAM bridge, a host name
// through the clearnet proxy unresolved; nothing is resolved locally and
// nothing is dialled directly.
func TestNodeReachesOnionAndI2P(t *testing.T) {
	socks := fakesocks.Start(t, fakesocks.Options{})
	sam := fakesam.Start(t)
	tests := []struct {
		name  string
		peer  func(target netip.AddrPort) string
		proxy bool // a clearnet proxy, which gets host names
	}{
		{name: "tor", peer: func(target netip.AddrPort) string { return socks.AddOnion(target, 8333).String() }},
		{name: "i2p", peer: func(target netip.AddrPort) string { return sam.AddNode(target).String() }},
		{name: "name via proxy", proxy: true, peer: func(target netip.AddrPort) string {
			socks.Map("seed.example", target)
			return "seed.example:18444"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(socks.Requests())
			rc := netreach.Config{
				TorProxy: socks.Addr().String(), I2PSAM: sam.Addr().String(),
				Direct: func(_ context.Context, ap netip.AddrPort) (net.Conn, error) {
					t.Errorf("direct dial of %v", ap)
					return nil, errors.New("no direct dials in this test")
				},
			}
			if tt.proxy {
				rc.Proxy = socks.Addr().String()
			}
			reach, err := netreach.New(rc)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { reach.Close() })
			r := startFakeNode(t, handshakeOnly, func(cfg *peer.NodeConfig) {
				target := netip.MustParseAddrPort(cfg.Peer)
				cfg.Peer = tt.peer(target)
				cfg.Reach = reach.Dial
				if tt.proxy {
					cfg.ReachName = reach.DialName
				}
				cfg.Resolve = func(_ context.Context, host string) ([]netip.Addr, error) {
					t.Errorf("resolved %q", host)
					return nil, errors.New("no resolution in this test")
				}
			})
			info := next(t, r.handshakes, "handshake")
			if info.Version.UserAgent != "/fakepeer:0.1/" {
				t.Errorf("handshake with %q", info.Version.UserAgent)
			}
			reqs := socks.Requests()[before:]
			switch tt.name {
			case "tor":
				if len(reqs) != 1 || reqs[0].ATYP != 3 || !strings.HasSuffix(reqs[0].Host, ".onion") || reqs[0].User == "" {
					t.Errorf("SOCKS requests %+v, want one by .onion name with credentials", reqs)
				}
			case "i2p":
				if len(reqs) != 0 {
					t.Errorf("SOCKS requests %+v for an I2P peer", reqs)
				}
			default:
				if len(reqs) != 1 || reqs[0].ATYP != 3 || reqs[0].Host != "seed.example" {
					t.Errorf("SOCKS requests %+v, want one for the name", reqs)
				}
			}
		})
	}
}

// TestConnectToOnionWithoutReach: a Dialer without Reach cannot reach an
// onion peer, and says so naming it.
func TestConnectToOnionWithoutReach(t *testing.T) {
	d := &peer.Dialer{Session: testConfig()}
	out := d.ConnectTo(t.Context(), fakesocks.RandomOnion(8333), nil, peer.ConnectHooks{})
	var de *peer.DialError
	if out.Connected || !errors.As(out.Err, &de) || !errors.Is(out.Err, peer.ErrNoReach) || !strings.Contains(out.Err.Error(), ".onion:8333") {
		t.Errorf("ConnectTo an onion without Reach: %v, want a DialError naming the peer and wrapping ErrNoReach", out.Err)
	}
}
