package netreach_test

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/btcpipe/btcpipe/internal/fakesam"
	"github.com/btcpipe/btcpipe/netreach"
	"github.com/btcpipe/btcpipe/wire"
)

func TestParsePeer(t *testing.T) {
	onion := tor.Host()
	// A damaged name: one letter changed (to one it is not: the address
	// is random, and may hold an x there already).
	damaged := onion[:10] + "x" + onion[11:]
	if onion[10] == 'x' {
		damaged = onion[:10] + "y" + onion[11:]
	}
	_, g := fakesam.RandomDestination()
	garlic := g.Host()
	tests := []struct {
		in       string
		want     wire.NetAddrV2
		wantHost string // for ErrHostName
		wantErr  string // substring; "" for success
	}{
		{in: onion + ":8333", want: wire.NetAddrV2{Network: wire.NetTorV3, Port: 8333}.WithKey(tor.Key())},
		{in: strings.ToUpper(onion) + ":18333", want: wire.NetAddrV2{Network: wire.NetTorV3, Port: 18333}.WithKey(tor.Key())},
		{in: onion, want: wire.NetAddrV2{Network: wire.NetTorV3, Port: 8333}.WithKey(tor.Key())},
		{in: garlic + ":0", want: wire.NetAddrV2{Network: wire.NetI2P}.WithKey(g.Key())},
		{in: garlic, want: wire.NetAddrV2{Network: wire.NetI2P}.WithKey(g.Key())},
		{in: "[fc00::1]:8333", want: wire.NetAddrV2{Network: wire.NetCJDNS, Port: 8333}.WithIP(netip.MustParseAddr("fc00::1"))},
		{in: "[2001:db8::1]:8333", want: wire.NetAddrV2{Network: wire.NetIPv6, Port: 8333}.WithIP(netip.MustParseAddr("2001:db8::1"))},
		{in: "2001:db8::1", want: wire.NetAddrV2{Network: wire.NetIPv6, Port: 8333}.WithIP(netip.MustParseAddr("2001:db8::1"))},
		{in: "[2001:db8::1]", want: wire.NetAddrV2{Network: wire.NetIPv6, Port: 8333}.WithIP(netip.MustParseAddr("2001:db8::1"))},
		{in: "1.2.3.4:8333", want: wire.NetAddrV2{Network: wire.NetIPv4, Port: 8333}.WithIP(netip.MustParseAddr("1.2.3.4"))},
		{in: "[::ffff:1.2.3.4]:8333", want: wire.NetAddrV2{Network: wire.NetIPv4, Port: 8333}.WithIP(netip.MustParseAddr("1.2.3.4"))},
		{in: "1.2.3.4", want: wire.NetAddrV2{Network: wire.NetIPv4, Port: 8333}.WithIP(netip.MustParseAddr("1.2.3.4"))},
		{in: "seed.example.org:8333", want: wire.NetAddrV2{Port: 8333}, wantHost: "seed.example.org", wantErr: "a host name"},
		{in: "seed.example.org", want: wire.NetAddrV2{Port: 8333}, wantHost: "seed.example.org", wantErr: "a host name"},
		{in: garlic + ":8333", wantErr: "I2P peers have port 0"},
		{in: damaged + ":8333", wantErr: "checksum"},
		{in: "abc.onion:8333", wantErr: "not a Tor v3"},
		{in: "abc.b32.i2p", wantErr: "not an I2P"},
		{in: "example.i2p", wantErr: "not an I2P"},
		{in: onion + ":0", wantErr: "port 0"},
		{in: "1.2.3.4:0", wantErr: "port 0"},
		{in: "1.2.3.4:65536", wantErr: "bad port"},
		{in: "1.2.3.4:x", wantErr: "bad port"},
		{in: "[fe80::1%eth0]:8333", wantErr: "zoned"},
		{in: "", wantErr: "empty"},
		{in: "a b:8333", wantErr: "want host:port"},
		{in: "[::1:8333", wantErr: "bad peer"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, host, err := netreach.ParsePeer(tt.in, 8333)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("got %v", err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
			}
			if tt.wantHost != "" && (!errors.Is(err, netreach.ErrHostName) || host != tt.wantHost) {
				t.Errorf("got host %q, %v; want %q and ErrHostName", host, err, tt.wantHost)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseI2PHostRoundTrip(t *testing.T) {
	for range 50 {
		_, a := fakesam.RandomDestination()
		key, err := netreach.ParseI2PHost(a.Host())
		if err != nil || key != a.Key() {
			t.Fatalf("ParseI2PHost(%s) = %x, %v; want %x", a.Host(), key, err, a.Key())
		}
	}
	// 256 bits in 52 letters: the last carries 1 bit and 4 of padding,
	// so it is 'a' or 'q'; 'b' decodes to the same bytes but is not
	// canonical.
	_, a := fakesam.RandomDestination()
	h := a.Host()
	if h[51] != 'a' && h[51] != 'q' {
		t.Fatalf("last letter %q of %s", h[51], h)
	}
	if _, err := netreach.ParseI2PHost(h[:51] + "b" + h[52:]); err == nil {
		t.Error("a non-canonical name was accepted")
	}
	if _, err := netreach.ParseI2PHost("\u212a" + h[3:]); err == nil {
		t.Error("a non-ASCII name was accepted")
	}
}

func FuzzParsePeer(f *testing.F) {
	for _, s := range []string{tor.Host() + ":8333", i2p.Host(), "[fc00::1]:8333", "1.2.3.4:8333", "[::1]", "a:b:c", "x.onion:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, _, err := netreach.ParsePeer(s, 8333)
		if err != nil {
			return
		}
		// A parsed peer prints back to something that parses the same.
		b, _, err := netreach.ParsePeer(a.String(), 8333)
		if err != nil || a != b {
			t.Fatalf("%q -> %s -> %+v, %v", s, a, b, err)
		}
	})
}

func ExampleParsePeer() {
	for _, s := range []string{"1.2.3.4:8333", "[fc00::1]:8333", "2001:db8::1", "seed.example.org"} {
		a, host, err := netreach.ParsePeer(s, 8333)
		if errors.Is(err, netreach.ErrHostName) {
			fmt.Printf("%s: resolve %s, port %d\n", s, host, a.Port)
			continue
		}
		fmt.Printf("%s: %v %s\n", s, a.Network, a)
	}
	// Output:
	// 1.2.3.4:8333: ipv4 1.2.3.4:8333
	// [fc00::1]:8333: cjdns [fc00::1]:8333
	// 2001:db8::1: ipv6 [2001:db8::1]:8333
	// seed.example.org: resolve seed.example.org, port 8333
}
