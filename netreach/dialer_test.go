package netreach_test

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/btcpipe/btcpipe/internal/fakesam"
	"github.com/btcpipe/btcpipe/internal/fakesocks"
	"github.com/btcpipe/btcpipe/netreach"
	"github.com/btcpipe/btcpipe/wire"
)

var (
	v4    = wire.NetAddrV2{Network: wire.NetIPv4, Port: 8333}.WithIP(netip.MustParseAddr("203.0.113.7"))
	v6    = wire.NetAddrV2{Network: wire.NetIPv6, Port: 8333}.WithIP(netip.MustParseAddr("2001:db8::7"))
	cj    = wire.NetAddrV2{Network: wire.NetCJDNS, Port: 8333}.WithIP(netip.MustParseAddr("fc00::7"))
	tor   = fakesocks.RandomOnion(8333)
	i2p   = func() wire.NetAddrV2 { _, a := fakesam.RandomDestination(); return a }()
	i2p1  = func() wire.NetAddrV2 { a := i2p; a.Port = 8333; return a }()
	v4p0  = wire.NetAddrV2{Network: wire.NetIPv4}.WithIP(netip.MustParseAddr("203.0.113.7"))
	torv2 = wire.NetAddrV2{Network: wire.NetTorV2, Port: 8333}
)

func TestRoute(t *testing.T) {
	all := []wire.NetAddrV2{v4, v6, cj, tor, i2p}
	tests := []struct {
		name string
		cfg  netreach.Config
		// want maps each address of all to a Via or a not-dialled reason.
		want []string
	}{
		{"zero config", netreach.Config{},
			[]string{"direct", "direct", "cjdns: not reachable (no route into fc00::/8 configured)", "tor: no proxy configured", "i2p: no SAM bridge configured"}},
		{"everything", netreach.Config{TorProxy: "127.0.0.1:9050", I2PSAM: "127.0.0.1:7656", CJDNSReachable: true},
			[]string{"direct", "direct", "direct", "tor", "sam"}},
		{"proxy for all", netreach.Config{Proxy: "127.0.0.1:1080", CJDNSReachable: true},
			[]string{"proxy", "proxy", "proxy", "tor", "i2p: no SAM bridge configured"}},
		{"proxy and tor", netreach.Config{Proxy: "127.0.0.1:1080", TorProxy: "127.0.0.1:9050"},
			[]string{"proxy", "proxy", "cjdns: not reachable (no route into fc00::/8 configured)", "tor", "i2p: no SAM bridge configured"}},
		{"onlynet onion", netreach.Config{TorProxy: "127.0.0.1:9050", I2PSAM: "127.0.0.1:7656", CJDNSReachable: true, OnlyNet: []wire.NetID{wire.NetTorV3}},
			[]string{"onlynet excludes ipv4", "onlynet excludes ipv6", "onlynet excludes cjdns", "tor", "onlynet excludes i2p"}},
		{"onlynet ipv6,i2p", netreach.Config{I2PSAM: "127.0.0.1:7656", OnlyNet: []wire.NetID{wire.NetIPv6, wire.NetI2P}},
			[]string{"onlynet excludes ipv4", "direct", "onlynet excludes cjdns", "onlynet excludes torv3", "sam"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := netreach.New(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			for i, a := range all {
				via, err := d.Route(a)
				got := via.String()
				if err != nil {
					got = err.Error()
					if !errors.Is(err, netreach.ErrNotDialled) {
						t.Errorf("%v: %v is not ErrNotDialled", a.Network, err)
					}
				}
				if got != tt.want[i] {
					t.Errorf("%v: got %q, want %q", a.Network, got, tt.want[i])
				}
			}
		})
	}
}

func TestRouteBadAddresses(t *testing.T) {
	d, err := netreach.New(netreach.Config{TorProxy: "127.0.0.1:9050", I2PSAM: "127.0.0.1:7656"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	tests := []struct {
		a    wire.NetAddrV2
		want error
		text string
	}{
		{v4p0, netreach.ErrBadPort, "port 0"},
		{i2p1, netreach.ErrBadPort, "i2p: port 8333, SAM 3.1 dials only port 0"},
		{torv2, netreach.ErrUnsupported, "unsupported network torv2"},
		{wire.NetAddrV2{Network: 42}, netreach.ErrUnsupported, "unsupported network net(42)"},
	}
	for _, tt := range tests {
		_, err := d.Route(tt.a)
		if !errors.Is(err, tt.want) || !errors.Is(err, netreach.ErrNotDialled) || err.Error() != tt.text {
			t.Errorf("%v: got %v, want %q (%v)", tt.a, err, tt.text, tt.want)
		}
		if _, err := d.Dial(t.Context(), tt.a); !errors.Is(err, tt.want) {
			t.Errorf("Dial %v: got %v, want %v", tt.a, err, tt.want)
		}
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  netreach.Config
	}{
		{"tor proxy without port", netreach.Config{TorProxy: "127.0.0.1"}},
		{"sam port 0", netreach.Config{I2PSAM: "127.0.0.1:0"}},
		{"proxy garbage", netreach.Config{Proxy: "::::"}},
		{"onlynet torv2", netreach.Config{OnlyNet: []wire.NetID{wire.NetTorV2}}},
		{"onlynet unknown", netreach.Config{OnlyNet: []wire.NetID{9}}},
	}
	for _, tt := range tests {
		if d, err := netreach.New(tt.cfg); err == nil {
			d.Close()
			t.Errorf("%s: New accepted %+v", tt.name, tt.cfg)
		}
	}
}

// TestNamesNeverResolved dials a Tor and an I2P node by name: the names go
// to the proxy and the bridge as names, no DNS lookup happens anywhere in
// the process, and nothing is dialled directly.
func TestNamesNeverResolved(t *testing.T) {
	noDNS(t)
	ctx := testCtx(t)
	node := startEcho(t)
	proxy := fakesocks.Start(t, fakesocks.Options{})
	bridge := fakesam.Start(t)
	onion := proxy.AddOnion(node.addr(), 8333)
	garlic := bridge.AddNode(node.addr())
	var rec dialRecorder
	d, err := netreach.New(netreach.Config{
		TorProxy: proxy.Addr().String(), I2PSAM: bridge.Addr().String(),
		Direct: rec.directDial, ProxyDial: rec.proxyDial,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, a := range []wire.NetAddrV2{onion, garlic} {
		c, err := d.Dial(ctx, a)
		if err != nil {
			t.Fatalf("%s: %v", a, err)
		}
		roundTrip(t, c)
		c.Close()
	}
	if r := proxy.Requests(); len(r) != 1 || r[0].ATYP != netreach.ATYPDomain || r[0].Host != onion.Host() {
		t.Errorf("proxy requests: got %+v, want one domain-name request for %s", r, onion.Host())
	}
	var lookups []string
	for _, c := range bridge.Commands() {
		if c.Verb == "NAMING LOOKUP" {
			lookups = append(lookups, c.Args["NAME"])
		}
	}
	if !slices.Equal(lookups, []string{garlic.Host()}) {
		t.Errorf("NAMING LOOKUPs: got %v, want [%s]", lookups, garlic.Host())
	}
	if n := len(rec.directCalls()); n != 0 {
		t.Errorf("%d direct dials, want 0", n)
	}
	noNames(t, rec.proxyCalls())
	for _, p := range rec.proxyCalls() {
		if p != proxy.Addr().String() && p != bridge.Addr().String() {
			t.Errorf("dialled %s: neither the proxy nor the bridge", p)
		}
	}
}

// TestProxyMeansNothingDirect sets Proxy: every network goes through it,
// IPs as IPs, onions as names, and the direct dialler is never called.
func TestProxyMeansNothingDirect(t *testing.T) {
	noDNS(t)
	ctx := testCtx(t)
	node := startEcho(t)
	proxy := fakesocks.Start(t, fakesocks.Options{})
	onion := proxy.AddOnion(node.addr(), 8333)
	for _, a := range []wire.NetAddrV2{v4, v6, cj} {
		proxy.Map(a.IP().String(), node.addr()) // public-looking, but only a name to the fake
	}
	var rec dialRecorder
	d, err := netreach.New(netreach.Config{Proxy: proxy.Addr().String(), CJDNSReachable: true,
		Direct: rec.directDial, ProxyDial: rec.proxyDial})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	addrs := []wire.NetAddrV2{v4, v6, cj, onion}
	for _, a := range addrs {
		c, err := d.Dial(ctx, a)
		if err != nil {
			t.Fatalf("%s: %v", a, err)
		}
		roundTrip(t, c)
		c.Close()
	}
	if n := len(rec.directCalls()); n != 0 {
		t.Errorf("%d direct dials with a proxy set, want 0", n)
	}
	reqs := proxy.Requests()
	if len(reqs) != len(addrs) {
		t.Fatalf("got %d proxy requests, want %d", len(reqs), len(addrs))
	}
	wantATYP := []byte{netreach.ATYPIPv4, netreach.ATYPIPv6, netreach.ATYPIPv6, netreach.ATYPDomain}
	for i, r := range reqs {
		if r.Host != addrs[i].Host() || r.ATYP != wantATYP[i] || r.Port != addrs[i].Port {
			t.Errorf("request %d: got %+v, want %s as atyp %d", i, r, addrs[i], wantATYP[i])
		}
	}
	if int(node.accepted.Load()) != len(addrs) {
		t.Errorf("the node accepted %d connections, want %d", node.accepted.Load(), len(addrs))
	}
	// A host name goes through the proxy as a name too.
	proxy.Map("seed.example.org", node.addr())
	c, err := d.DialName(ctx, "seed.example.org", 8333)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c)
	c.Close()
	if r := proxy.Requests(); r[len(r)-1].Host != "seed.example.org" || r[len(r)-1].ATYP != netreach.ATYPDomain {
		t.Errorf("DialName sent %+v, want the name as a domain", r[len(r)-1])
	}
	if n := len(rec.directCalls()); n != 0 {
		t.Errorf("%d direct dials with a proxy set, want 0", n)
	}
}

func TestDirectDialInjected(t *testing.T) {
	ctx := testCtx(t)
	node := startEcho(t)
	var rec dialRecorder
	d, err := netreach.New(netreach.Config{CJDNSReachable: true, Direct: rec.directDial})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	a := wire.NetAddrV2FromAddrPort(node.addr(), 0, 0)
	c, err := d.Dial(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c)
	c.Close()
	// CJDNS goes to the same direct dialler (which records it and
	// refuses: tests dial only loopback).
	if _, err := d.Dial(ctx, cj); !errors.Is(err, errNotLoopback) {
		t.Errorf("CJDNS dial: got %v, want the recorder's refusal", err)
	}
	want := []netip.AddrPort{node.addr(), netip.MustParseAddrPort("[fc00::7]:8333")}
	if got := rec.directCalls(); !slices.Equal(got, want) {
		t.Errorf("direct dials: got %v, want %v", got, want)
	}
	if _, err := d.DialName(ctx, "seed.example.org", 8333); !errors.Is(err, netreach.ErrNotDialled) {
		t.Errorf("DialName without a proxy: got %v, want ErrNotDialled", err)
	}
	if _, err := d.DialName(ctx, tor.Host(), 8333); err == nil || errors.Is(err, netreach.ErrNotDialled) {
		t.Errorf("DialName of an onion: got %v, want a usage error", err)
	}
}

func TestOnlyNetDialsNothingExcluded(t *testing.T) {
	var rec dialRecorder
	proxy := fakesocks.Start(t, fakesocks.Options{})
	d, err := netreach.New(netreach.Config{TorProxy: proxy.Addr().String(), OnlyNet: []wire.NetID{wire.NetTorV3},
		Direct: rec.directDial, ProxyDial: rec.proxyDial})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, a := range []wire.NetAddrV2{v4, v6} {
		_, err := d.Dial(t.Context(), a)
		if !errors.Is(err, netreach.ErrOnlyNet) || !strings.HasPrefix(err.Error(), "onlynet excludes ") {
			t.Errorf("%s: got %v, want an onlynet refusal", a, err)
		}
	}
	if len(rec.directCalls())+len(rec.proxyCalls()) != 0 || len(proxy.Requests()) != 0 {
		t.Errorf("something was dialled: direct %v, proxy %v", rec.directCalls(), rec.proxyCalls())
	}
}

func TestParseOnlyNet(t *testing.T) {
	tests := []struct {
		in      string
		want    []wire.NetID
		wantErr bool
	}{
		{"", nil, false},
		{"ipv4", []wire.NetID{wire.NetIPv4}, false},
		{" IPv4 , onion,i2p,cjdns,ipv6 ", []wire.NetID{wire.NetIPv4, wire.NetTorV3, wire.NetI2P, wire.NetCJDNS, wire.NetIPv6}, false},
		{"tor,torv3,onion", []wire.NetID{wire.NetTorV3}, false},
		{"ipv4,,", []wire.NetID{wire.NetIPv4}, false},
		{"ipv5", nil, true},
		{"torv2", nil, true},
	}
	for _, tt := range tests {
		got, err := netreach.ParseOnlyNet(tt.in)
		if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
			t.Errorf("ParseOnlyNet(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// TestTorProxyApartFromProxy: with both set, onions go to the Tor proxy
// and IPs to the other, each with fresh credentials unless shared.
func TestTorProxyApartFromProxy(t *testing.T) {
	for _, shared := range []bool{false, true} {
		t.Run(map[bool]string{false: "random credentials", true: "shared credentials"}[shared], func(t *testing.T) {
			ctx := testCtx(t)
			node := startEcho(t)
			torp := fakesocks.Start(t, fakesocks.Options{})
			clearnet := fakesocks.Start(t, fakesocks.Options{})
			onion := torp.AddOnion(node.addr(), 8333)
			clearnet.Map(v4.IP().String(), node.addr())
			var rec dialRecorder
			d, err := netreach.New(netreach.Config{TorProxy: torp.Addr().String(), Proxy: clearnet.Addr().String(),
				SharedCredentials: shared, Direct: rec.directDial, ProxyDial: rec.proxyDial})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			for _, a := range []wire.NetAddrV2{onion, v4, onion} {
				c, err := d.Dial(ctx, a)
				if err != nil {
					t.Fatalf("%s: %v", a, err)
				}
				roundTrip(t, c)
				c.Close()
			}
			tr, cr := torp.Requests(), clearnet.Requests()
			if len(tr) != 2 || len(cr) != 1 || tr[0].Host != onion.Host() || cr[0].Host != v4.IP().String() {
				t.Fatalf("tor proxy got %+v, clearnet proxy %+v", tr, cr)
			}
			if shared {
				if tr[0].Method != 0 || tr[1].Method != 0 {
					t.Errorf("shared credentials: methods %d, %d; want 0 (no auth)", tr[0].Method, tr[1].Method)
				}
			} else if tr[0].User == tr[1].User || tr[0].User == "" {
				t.Errorf("two onion connections with usernames %q and %q, want different", tr[0].User, tr[1].User)
			}
			if n := len(rec.directCalls()); n != 0 {
				t.Errorf("%d direct dials, want 0", n)
			}
		})
	}
}
