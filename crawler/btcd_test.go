package crawler

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/btcpipe/btcpipe/internal/btcdtest"
	"github.com/btcpipe/btcpipe/peer"
	"github.com/btcpipe/btcpipe/wire"
)

// TestCrawlBtcd crawls from two real btcd processes on loopback as seeds.
// Each was taught 100 routable (public) addresses; the crawl must record
// both btcds with the version data btcd's own wire package reads from them
// (an independent oracle), and record every address they return as
// not_dialled without dialling it. Under CI=true a missing btcd fails.
func TestCrawlBtcd(t *testing.T) {
	ctx := testContext(t)
	taught := btcdtest.RoutableAddrs(200, 11)
	var nodes []*btcdtest.Node
	var seeds []string
	for i := range 2 {
		n := btcdtest.Start(t, btcdtest.Options{ExtraArgs: []string{"--debuglevel=AMGR=trace"}})
		if err := btcdtest.SeedAddrs(ctx, n.Addr, btcdtest.Regtest, taught[100*i:100*(i+1)]); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
		seeds = append(seeds, n.Addr.String())
	}

	allow := netip.MustParsePrefix("127.0.0.1/32")
	rec := newDialRecorder(t, allow)
	sink := newMemSink()
	c, err := New(Config{
		Session:        peer.DefaultConfig(&wire.Regtest),
		Seeds:          seeds,
		Allow:          []netip.Prefix{allow},
		Quiet:          300 * time.Millisecond,
		GetAddrTimeout: 5 * time.Second,
		Dial:           rec.dial,
		Out:            sink,
	})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := c.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dials, forbidden, _, _ := rec.snapshot()
	if len(forbidden) > 0 {
		t.Fatalf("dialled outside 127.0.0.1: %v", forbidden)
	}
	if len(dials) != 2 {
		t.Errorf("dialled %v, want only the two btcds", dials)
	}

	byAddr := map[string]Record{}
	for _, r := range sink.records {
		byAddr[r.Addr] = r
	}
	for i, n := range nodes {
		stored, err := n.AddrCount()
		if err != nil {
			t.Fatal(err)
		}
		// The oracle: what btcd's version says, read by btcd's wire package.
		conn, err := btcdtest.Dial(ctx, n.Addr, btcdtest.Regtest)
		if err != nil {
			t.Fatal(err)
		}
		v := conn.Remote
		conn.Close()

		r, ok := byAddr[n.Addr.String()]
		if !ok || r.Outcome != Reachable || r.Handshake == nil {
			t.Fatalf("%v: record %+v, want reachable with version data", n, r)
		}
		if r.Source != "seed" || r.Network != "ipv4" || r.ConnectMs <= 0 || r.HandshakeMs <= 0 {
			t.Errorf("%v: source %q, network %q, connect %v ms, handshake %v ms", n, r.Source, r.Network, r.ConnectMs, r.HandshakeMs)
		}
		if r.Protocol != int32(v.ProtocolVersion) || r.ServiceBits != uint64(v.Services) ||
			r.UserAgent != v.UserAgent || r.StartHeight != v.LastBlock || r.Relay != !v.DisableRelayTx {
			t.Errorf("%v: recorded protocol %d, services %#x, user agent %q, height %d, relay %v; btcd says %d, %#x, %q, %d, relay %v",
				n, r.Protocol, r.ServiceBits, r.UserAgent, r.StartHeight, r.Relay,
				v.ProtocolVersion, uint64(v.Services), v.UserAgent, v.LastBlock, !v.DisableRelayTx)
		}
		if !strings.Contains(r.UserAgent, "btcd:0.26.2") || r.Protocol != 70016 || !slices.Contains(r.Services, "NODE_WITNESS") {
			t.Errorf("%v: user agent %q, protocol %d, services %v; want btcd 0.26.2 at 70016 with NODE_WITNESS", n, r.UserAgent, r.Protocol, r.Services)
		}
		if !slices.Equal(r.Services, wire.ServiceFlag(v.Services).Names()) {
			t.Errorf("%v: services %v, want %v", n, r.Services, wire.ServiceFlag(v.Services).Names())
		}
		if want := stored * 23 / 100; r.AddrsReturned != want || r.AddrsNew != want || r.Ended != EndedAnswer {
			t.Errorf("%v: addrs returned %d, new %d, ended %q; want %d (23%% of %d stored), all new, ended quiet",
				n, r.AddrsReturned, r.AddrsNew, r.Ended, want, stored)
		}
		mine := taught[100*i : 100*(i+1)]
		learned := 0
		for _, lr := range sink.records {
			if lr.Source != n.Addr.String() {
				continue
			}
			learned++
			ap, err := netip.ParseAddrPort(lr.Addr)
			if err != nil || !slices.Contains(mine, ap) {
				t.Errorf("%v told us about %s, which it was not taught", n, lr.Addr)
			}
			if lr.Outcome != NotDialled || lr.Reason != "outside the allowlist" {
				t.Errorf("%s: outcome %q, reason %q; want not_dialled, outside the allowlist", lr.Addr, lr.Outcome, lr.Reason)
			}
		}
		if learned != r.AddrsNew {
			t.Errorf("%v: %d records with it as source, %d new addresses", n, learned, r.AddrsNew)
		}
	}
	if sum.ByOutcome[Reachable] != 2 || sum.Tried != 2 || len(sum.ByUserAgent) != 1 {
		t.Errorf("summary: %+v", sum)
	}
	for _, line := range strings.Split(sink.lines.String(), "\n") {
		if strings.Contains(line, `"outcome":"reachable"`) {
			t.Logf("%s", line)
		}
	}
}
