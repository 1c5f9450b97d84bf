package crawler

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btcpipe/btcpipe/internal/fakesam"
	"github.com/btcpipe/btcpipe/internal/fakesocks"
	"github.com/btcpipe/btcpipe/internal/simnet"
	"github.com/btcpipe/btcpipe/netreach"
	"github.com/btcpipe/btcpipe/wire"
)

// proxyDials counts the connections to the proxies and the bridge, open at
// once and in all; it refuses anything but loopback.
type proxyDials struct {
	mu          sync.Mutex
	total, open int
	peak        int
	forbidden   []string
}

func (p *proxyDials) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	ap, err := netip.ParseAddrPort(addr)
	p.mu.Lock()
	if err != nil || !ap.Addr().IsLoopback() {
		p.forbidden = append(p.forbidden, addr)
		p.mu.Unlock()
		return nil, net.UnknownNetworkError("test: proxy " + addr + " is not loopback")
	}
	p.total++
	p.open++
	p.peak = max(p.peak, p.open)
	p.mu.Unlock()
	var nd net.Dialer
	c, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		p.closed()
		return nil, err
	}
	return &proxyConn{Conn: c, p: p}, nil
}

func (p *proxyDials) closed() {
	p.mu.Lock()
	p.open--
	p.mu.Unlock()
}

type proxyConn struct {
	net.Conn
	p    *proxyDials
	once sync.Once
}

func (c *proxyConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.p.closed)
	return err
}

// world is a real-shaped world on loopback: IPv4 nodes, IPv6 nodes on ::1,
// Tor nodes behind fakesocks, I2P nodes behind fakesam, multi-network
// nodes, and per node refused, stale and unroutable addresses. Stale ones
// sit in a loopback range a crawler would reach (so dialling one would
// show), unroutable ones in a documentation range the allowlist refuses.
type world struct {
	s     *simnet.Net
	w     *simnet.WorldGraph
	socks *fakesocks.Server
	sam   *fakesam.Bridge
	stale netip.Prefix
}

func newWorld(t *testing.T, reachable, multi int) *world {
	t.Helper()
	s := newSim(t, simnet.Options{})
	socks := fakesocks.Start(t, fakesocks.Options{})
	sam := fakesam.Start(t)
	b := s.Prefix().Addr().As4()
	stale := netip.PrefixFrom(netip.AddrFrom4([4]byte{b[0], b[1], 250, 0}), 24)
	wg, err := s.BuildWorld(simnet.World{
		Reachable: reachable,
		Share:     map[wire.NetID]float64{wire.NetTorV3: 0.5, wire.NetIPv6: 0.1, wire.NetI2P: 0.05},
		Onion:     func(t netip.AddrPort) wire.NetAddrV2 { return socks.AddOnion(t, 8333) },
		I2P:       sam.AddNode,
		IPv6:      netip.IPv6Loopback(),
		Dead:      simnet.DeadMix{Refused: 2, Stale: 2, Unroutable: 1},
		// Stale addresses use the black-hole prefix; none are dialled here.
		BlackholePrefix:  stale,
		UnroutablePrefix: netip.MustParsePrefix("192.0.2.0/24"),
		MultiNetwork:     multi,
		Seed:             3,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &world{s: s, w: wg, socks: socks, sam: sam, stale: stale}
}

func (w *world) config(rec *dialRecorder, pd *proxyDials, out Sink) Config {
	cfg := simConfig(w.s, w.w.Graph, rec, out)
	cfg.Allow = []netip.Prefix{w.s.Prefix(), netip.MustParsePrefix("::1/128")}
	cfg.Reach = netreach.Config{TorProxy: w.socks.Addr().String(), I2PSAM: w.sam.Addr().String(), ProxyDial: pd.dial}
	cfg.ProxyConnectTimeout = 10 * time.Second
	return cfg
}

// TestCrawlWorld crawls a world on all networks but CJDNS (which needs a
// network namespace): Tor through the SOCKS proxy by name with fresh
// credentials per connection, I2P through the SAM bridge, stale addresses
// skipped, unique nodes counted across networks.
func TestCrawlWorld(t *testing.T) {
	const reachable, multi = 120, 6
	w := newWorld(t, reachable, multi)
	rec := newDialRecorder(t, w.s.Prefix())
	rec.allow6 = true
	pd := &proxyDials{}
	sink := newMemSink()
	cfg := w.config(rec, pd, sink)
	var resolved atomic.Int64
	cfg.Resolve = func(context.Context, string) ([]netip.Addr, error) {
		resolved.Add(1)
		return nil, errors.New("no name resolution in this test")
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := c.Run(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	if n := resolved.Load(); n != 0 {
		t.Errorf("%d name resolutions, want none (onion and I2P names go to their proxies)", n)
	}
	dials, forbidden, open, peak := rec.snapshot()
	if len(forbidden) > 0 || len(pd.forbidden) > 0 {
		t.Fatalf("dialled outside the allowlist: %v; proxies: %v", forbidden, pd.forbidden)
	}
	if open != 0 || pd.open != 0 {
		t.Errorf("%d direct and %d proxy connections open after Run", open, pd.open)
	}
	if peak+pd.peak > cfg.Concurrency+1 { // +1: the SAM session's control connection
		t.Errorf("%d direct + %d proxy connections open at once, over the limit of %d", peak, pd.peak, cfg.Concurrency)
	}
	for _, d := range dials {
		if w.stale.Contains(d.Addr()) {
			t.Errorf("dialled stale address %v", d)
		}
	}

	want := map[string]int{}
	for n, c := range w.w.ByNetwork {
		want[n.String()] = c
	}
	for _, n := range []string{"ipv4", "ipv6", "torv3", "i2p"} {
		if sum.ReachableByNetwork[n] != want[n] || want[n] == 0 {
			t.Errorf("reachable on %s: %d, want %d (of %v)", n, sum.ReachableByNetwork[n], want[n], sum.ReachableByNetwork)
		}
	}
	if sum.UniqueNodes != reachable || sum.MultiNetwork != multi {
		t.Errorf("unique nodes %d, multi-network %d; want %d and %d", sum.UniqueNodes, sum.MultiNetwork, reachable, multi)
	}
	if got, want := sum.Stale, len(w.w.Stale); got != want || sum.StaleByNetwork["ipv4"] != want {
		t.Errorf("stale %d (%v), want %d", got, sum.StaleByNetwork, want)
	}
	if got, want := sum.ByNetworkOutcome["ipv4"][Refused], len(w.w.Refused); got != want {
		t.Errorf("refused %d, want %d", got, want)
	}

	// Every record of a reachable node: the answer complete, when and by
	// how many it was announced.
	staleSeen := 0
	for _, r := range sink.records {
		switch {
		case r.Outcome == Reachable:
			if r.Ended != EndedAnswer {
				t.Errorf("%s: ended %q, want %q", r.Addr, r.Ended, EndedAnswer)
			}
			if r.Source != "seed" && (r.LastAnnounced == nil || r.Sources < 1 || time.Since(*r.LastAnnounced) > time.Hour) {
				t.Errorf("%s: last announced %v by %d sources", r.Addr, r.LastAnnounced, r.Sources)
			}
			wantVia := map[string]string{"ipv4": "direct", "ipv6": "direct", "torv3": "tor", "i2p": "sam"}[r.Network]
			if r.Via != wantVia {
				t.Errorf("%s: via %q, want %q", r.Addr, r.Via, wantVia)
			}
		case r.Outcome == NotDialled && strings.HasPrefix(r.Reason, StaleReasonPrefix):
			staleSeen++
			if !slices.ContainsFunc(w.w.Stale, func(a wire.NetAddrV2) bool { return a.String() == r.Addr }) {
				t.Errorf("stale record %s is not one of the stale addresses %v", r.Addr, w.w.Stale)
			}
			if r.LastAnnounced == nil || time.Since(*r.LastAnnounced) < 29*24*time.Hour {
				t.Errorf("%s: stale, but last announced %v", r.Addr, r.LastAnnounced)
			}
		}
	}
	if staleSeen != len(w.w.Stale) {
		t.Errorf("%d stale records, want %d", staleSeen, len(w.w.Stale))
	}

	// Tor: every request by name, never an address; fresh credentials per
	// connection.
	reqs := w.socks.Requests()
	creds := map[string]bool{}
	for _, r := range reqs {
		if r.ATYP != 3 || !strings.HasSuffix(r.Host, ".onion") {
			t.Errorf("SOCKS request for %q (ATYP %d), want .onion names only", r.Host, r.ATYP)
		}
		if r.User == "" || creds[r.User+":"+r.Pass] {
			t.Errorf("SOCKS credentials %q reused or missing", r.User)
		}
		creds[r.User+":"+r.Pass] = true
	}
	if len(reqs) != want["torv3"] {
		t.Errorf("%d SOCKS requests, want one per onion address (%d)", len(reqs), want["torv3"])
	}
	t.Logf("%d records; reachable %v; unique %d; peak %d direct + %d proxied", len(sink.records), sum.ReachableByNetwork, sum.UniqueNodes, peak, pd.peak)
}

// TestCrawlWithoutProxies records onion and I2P addresses as not_dialled,
// with the reason, when no proxy is configured.
func TestCrawlWithoutProxies(t *testing.T) {
	w := newWorld(t, 60, 0)
	rec := newDialRecorder(t, w.s.Prefix())
	rec.allow6 = true
	sink := newMemSink()
	cfg := w.config(rec, &proxyDials{}, sink)
	cfg.Reach = netreach.Config{}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := c.Run(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(w.socks.Requests()); n != 0 {
		t.Errorf("%d SOCKS requests without a proxy configured", n)
	}
	for _, r := range sink.records {
		switch r.Network {
		case "torv3":
			if r.Outcome != NotDialled || r.Reason != "tor: no proxy configured" {
				t.Errorf("%s: %s %q, want not_dialled, tor: no proxy configured", r.Addr, r.Outcome, r.Reason)
			}
		case "i2p":
			if r.Outcome != NotDialled || r.Reason != "i2p: no SAM bridge configured" {
				t.Errorf("%s: %s %q, want not_dialled, i2p: no SAM bridge configured", r.Addr, r.Outcome, r.Reason)
			}
		}
	}
	if sum.ByNetworkOutcome["torv3"][NotDialled] == 0 || sum.ByNetworkOutcome["i2p"][NotDialled] == 0 {
		t.Errorf("no onion or I2P address recorded: %v", sum.ByNetworkOutcome)
	}
}

// TestCrawlThroughProxy sets a clearnet proxy (BTCPIPE_PROXY): every
// connection goes through it, nothing is dialled directly, and the
// allowlist still decides which IP addresses are asked for.
func TestCrawlThroughProxy(t *testing.T) {
	w := newWorld(t, 60, 0)
	rec := newDialRecorder(t, w.s.Prefix())
	rec.allow6 = true
	pd := &proxyDials{}
	sink := newMemSink()
	cfg := w.config(rec, pd, sink)
	cfg.Reach = netreach.Config{Proxy: w.socks.Addr().String(), I2PSAM: w.sam.Addr().String(), ProxyDial: pd.dial}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := c.Run(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	if dials, _, _, _ := rec.snapshot(); len(dials) != 0 {
		t.Fatalf("%d direct dials with a proxy set: %v", len(dials), dials[:min(len(dials), 5)])
	}
	allow := NewAllowlist(cfg.Allow)
	for _, r := range w.socks.Requests() {
		if ip, err := netip.ParseAddr(r.Host); err == nil {
			if ok, _ := allow.Check(netip.AddrPortFrom(ip, r.Port)); !ok {
				t.Errorf("asked the proxy for %s, outside the allowlist", r.Host)
			}
		}
	}
	if sum.ReachableByNetwork["ipv4"] != w.w.ByNetwork[wire.NetIPv4] || sum.ReachableByNetwork["torv3"] != w.w.ByNetwork[wire.NetTorV3] {
		t.Errorf("reachable %v, want %v", sum.ReachableByNetwork, w.w.ByNetwork)
	}
	for _, r := range sink.records {
		if r.Outcome == Reachable && r.Network != "i2p" && r.Via != "proxy" && r.Via != "tor" {
			t.Errorf("%s reached via %q with a proxy set", r.Addr, r.Via)
		}
	}
}

// TestCrawlProxyFailures: a SOCKS reply is the peer's outcome with the
// reply named (host unreachable, TTL expired, refused); a proxy that is not
// there is proxy_failed, which says nothing about the peer.
func TestCrawlProxyFailures(t *testing.T) {
	s := newSim(t, simnet.Options{})
	socks := fakesocks.Start(t, fakesocks.Options{})
	seed, err := s.Add(simnet.Spec{Kind: simnet.Good})
	if err != nil {
		t.Fatal(err)
	}
	onions := []struct {
		code        byte
		wantOutcome Outcome
		wantError   string
	}{
		{0x04, Unreachable, "socks: host unreachable"},
		{0x06, Timeout, "socks: TTL expired"},
		{0x05, Refused, "socks: connection refused"},
	}
	var peers []wire.NetAddrV2
	want := map[string]int{}
	for i, o := range onions {
		a := fakesocks.RandomOnion(8333)
		socks.SetReply(a.Host(), o.code)
		peers = append(peers, a)
		want[a.String()] = i
	}
	seed.SetPeers(peers)
	for _, tt := range []struct {
		name  string
		proxy string
	}{{"replies", socks.Addr().String()}, {"proxy down", "127.0.0.1:1"}} {
		t.Run(tt.name, func(t *testing.T) {
			rec := newDialRecorder(t, s.Prefix())
			sink := newMemSink()
			cfg := simConfig(s, &simnet.Graph{Seeds: []netip.AddrPort{seed.Addr}}, rec, sink)
			cfg.Reach = netreach.Config{TorProxy: tt.proxy}
			c, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Run(testContext(t)); err != nil {
				t.Fatal(err)
			}
			seen := 0
			for _, r := range sink.records {
				i, ok := want[r.Addr]
				if !ok {
					continue
				}
				seen++
				wo, we := onions[i].wantOutcome, onions[i].wantError
				if tt.proxy != socks.Addr().String() {
					wo, we = ProxyFailed, "socks:"
				}
				if r.Outcome != wo || !strings.HasPrefix(r.Error, we) || r.Via != "tor" {
					t.Errorf("%s: %s %q via %q; want %s, an error starting %q, via tor", r.Addr, r.Outcome, r.Error, r.Via, wo, we)
				}
			}
			if seen != len(onions) {
				t.Errorf("%d onion records, want %d", seen, len(onions))
			}
		})
	}
}
