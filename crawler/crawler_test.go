package crawler

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcpipe/btcpipe/internal/simnet"
	"github.com/btcpipe/btcpipe/peer"
	"github.com/btcpipe/btcpipe/wire"
)

// wantOutcome is the outcome each simulated kind must be classified as.
var wantOutcome = map[simnet.Kind]Outcome{
	simnet.Good:             Reachable,
	simnet.Mute:             Reachable,
	simnet.Refused:          Refused,
	simnet.Stall:            Timeout,
	simnet.Blackhole:        Timeout,
	simnet.Garbage:          HandshakeFailed,
	simnet.CloseAfterVerack: ClosedAfterVerack,
	simnet.Reset:            Reset,
	simnet.OldVersion:       VersionTooOld,
	simnet.Mirror:           Self,
}

// simConfig is a crawl of s with short timeouts and the recorder's dial.
func simConfig(s *simnet.Net, g *simnet.Graph, d *dialRecorder, out Sink) Config {
	seeds := make([]string, len(g.Seeds))
	for i, a := range g.Seeds {
		seeds[i] = a.String()
	}
	return Config{
		Session:     peer.DefaultConfig(&wire.Regtest),
		Seeds:       seeds,
		Allow:       []netip.Prefix{s.Prefix()},
		Concurrency: 24,
		// Generous: on a loaded 2-core machine running the race detector
		// (fuzzers alongside) a goroutine can wait seconds to be
		// scheduled, and a connect that completed in the kernel then
		// times out in Go.
		ConnectTimeout:   5 * time.Second,
		HandshakeTimeout: 5 * time.Second,
		GetAddrTimeout:   5 * time.Second,
		Quiet:            150 * time.Millisecond,
		Dial:             d.dial,
		Resolve: func(ctx context.Context, host string) ([]netip.Addr, error) {
			return nil, errors.New("no name resolution in this test")
		},
		Out: out,
	}
}

// TestCrawlSimnet crawls 500 simulated nodes reachable only through chains
// of addr replies, with decoys that must never be dialled.
func TestCrawlSimnet(t *testing.T) {
	s := newSim(t, simnet.Options{})
	count := map[simnet.Kind]int{
		simnet.Good: 400, simnet.Mute: 10, simnet.Refused: 25, simnet.Stall: 10, simnet.Blackhole: 5,
		simnet.Garbage: 15, simnet.CloseAfterVerack: 15, simnet.Reset: 10, simnet.OldVersion: 5, simnet.Mirror: 5,
	}
	decoys := simnet.StandardDecoys(s.Prefix())
	g, err := s.Build(simnet.Layout{Count: count, Decoys: decoys, Seed: 7, Height: 100_000})
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Nodes) != 500 {
		t.Fatalf("built %d nodes, want 500", len(g.Nodes))
	}
	rec := newDialRecorder(t, s.Prefix())
	sink := newMemSink()
	cfg := simConfig(s, g, rec, sink)
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := c.Run(testContext(t))
	if err != nil {
		t.Fatal(err)
	}

	// Every dial: inside the allowlist, once per address, and every
	// simulated node dialled.
	dials, forbidden, open, peak := rec.snapshot()
	if len(forbidden) > 0 {
		t.Fatalf("dialled %d addresses outside the allowlist: %v", len(forbidden), forbidden)
	}
	if open != 0 {
		t.Errorf("%d connections still open after Run", open)
	}
	if peak > cfg.Concurrency {
		t.Errorf("%d connections open at once, over the limit of %d", peak, cfg.Concurrency)
	}
	if st := c.Stats(); st.PeakFlight > cfg.Concurrency || st.InFlight != 0 {
		t.Errorf("crawler stats: peak in flight %d (limit %d), in flight at the end %d", st.PeakFlight, cfg.Concurrency, st.InFlight)
	}
	dialled := map[netip.AddrPort]int{}
	for _, d := range dials {
		dialled[d]++
		if dialled[d] == 2 {
			t.Errorf("%v dialled twice", d)
		}
	}
	for _, n := range g.Nodes {
		if dialled[n.Addr] == 0 {
			t.Errorf("%v never dialled", n)
		}
	}
	if len(dialled) != len(g.Nodes) {
		t.Errorf("dialled %d distinct addresses, want the %d nodes", len(dialled), len(g.Nodes))
	}

	// Every node and decoy recorded once, correctly.
	byAddr := map[string]Record{}
	for _, r := range sink.records {
		if _, dup := byAddr[r.Addr]; dup {
			t.Errorf("%s recorded twice", r.Addr)
		}
		byAddr[r.Addr] = r
		if r.Type != RecordType || r.Time.IsZero() {
			t.Errorf("%s: type %q, time %v", r.Addr, r.Type, r.Time)
		}
	}
	for _, n := range g.Nodes {
		r, ok := byAddr[n.Addr.String()]
		if !ok {
			t.Errorf("%v not recorded", n)
			continue
		}
		checkSimRecord(t, g, n, r)
	}
	for _, d := range decoys {
		r, ok := byAddr[d.String()]
		switch {
		case !ok:
			t.Errorf("decoy %v not recorded", d)
		case r.Outcome != NotDialled || r.Reason == "" || r.Handshake != nil:
			t.Errorf("decoy %v: outcome %q, reason %q; want not_dialled with a reason", d, r.Outcome, r.Reason)
		case r.Network != d.Network.String():
			t.Errorf("decoy %v: network %q, want %q", d, r.Network, d.Network)
		}
		if ap, ok := d.AddrPort(); ok && dialled[ap] > 0 {
			t.Errorf("decoy %v was dialled", d)
		}
	}
	if want := len(g.Nodes) + len(decoys); len(sink.records) != want {
		t.Errorf("%d records, want %d", len(sink.records), want)
	}

	// The summary.
	if sink.summary == nil || !reflect.DeepEqual(*sink.summary, sum) {
		t.Fatalf("the sink's summary differs from Run's:\n%+v\n%+v", sink.summary, sum)
	}
	wantByOutcome := map[Outcome]int{NotDialled: len(decoys)}
	for k, n := range count {
		wantByOutcome[wantOutcome[k]] += n
	}
	if !reflect.DeepEqual(sum.ByOutcome, wantByOutcome) {
		t.Errorf("by outcome %v, want %v", sum.ByOutcome, wantByOutcome)
	}
	if sum.Interrupted || sum.Pending != 0 || sum.Abandoned != 0 || sum.Dropped != 0 {
		t.Errorf("summary: interrupted %v, pending %d, abandoned %d, dropped %d; want none",
			sum.Interrupted, sum.Pending, sum.Abandoned, sum.Dropped)
	}
	if sum.Discovered != len(g.Nodes)+len(decoys) || sum.Tried != len(g.Nodes) || sum.Records != len(sink.records) {
		t.Errorf("summary: discovered %d, tried %d, records %d; want %d, %d, %d",
			sum.Discovered, sum.Tried, sum.Records, len(g.Nodes)+len(decoys), len(g.Nodes), len(sink.records))
	}
	if n := sum.ByUserAgent; len(n) != count[simnet.Good]+count[simnet.Mute] {
		t.Errorf("%d user agents, want one per reachable node (%d)", len(n), count[simnet.Good]+count[simnet.Mute])
	}
	reachable := count[simnet.Good] + count[simnet.Mute]
	if sum.ByService["NODE_NETWORK"] != reachable || sum.ByServiceSet["NODE_NETWORK|NODE_WITNESS"] != reachable ||
		sum.ByProtocol["70016"] != reachable {
		t.Errorf("services %v, sets %v, protocols %v; want all %d reachable nodes NODE_NETWORK|NODE_WITNESS at 70016",
			sum.ByService, sum.ByServiceSet, sum.ByProtocol, reachable)
	}

	// The JSON lines say the same as the records.
	recs, lineSum := parseLines(t, sink.lines.Bytes())
	if len(recs) != len(sink.records) {
		t.Fatalf("%d JSON node lines, %d records", len(recs), len(sink.records))
	}
	for i := range recs {
		if !reflect.DeepEqual(recs[i], sink.records[i]) {
			t.Fatalf("line %d parses to\n%+v\nwant\n%+v", i+1, recs[i], sink.records[i])
		}
	}
	if lineSum == nil || !reflect.DeepEqual(*lineSum, sum) {
		t.Errorf("summary line parses to %+v, want %+v", lineSum, sum)
	}
	rebuilt := NewSummary(sum.Network)
	for i := range recs {
		rebuilt.Add(&recs[i])
	}
	if !reflect.DeepEqual(rebuilt.ByOutcome, sum.ByOutcome) || !reflect.DeepEqual(rebuilt.ByUserAgent, sum.ByUserAgent) {
		t.Errorf("summary rebuilt from the lines differs: %v vs %v", rebuilt.ByOutcome, sum.ByOutcome)
	}
	t.Logf("%d records, peak %d connections open, %.2fs", len(sink.records), peak, sum.Seconds)
}

// checkSimRecord checks the record of simulated node n.
func checkSimRecord(t *testing.T, g *simnet.Graph, n *simnet.Node, r Record) {
	t.Helper()
	want := wantOutcome[n.Kind]
	if r.Outcome != want {
		t.Errorf("%v: outcome %q (error %q), want %q", n, r.Outcome, r.Error, want)
		return
	}
	if r.Network != "ipv4" {
		t.Errorf("%v: network %q", n, r.Network)
	}
	// Source: the seed, or a good node whose answer names n.
	if r.Source == "seed" {
		if !slices.Contains(g.Seeds, n.Addr) {
			t.Errorf("%v: source seed, but it is not a seed", n)
		}
	} else {
		src, err := netip.ParseAddrPort(r.Source)
		teller := g.ByAddr[src]
		if err != nil || teller == nil || !slices.ContainsFunc(teller.Peers(), func(a wire.NetAddrV2) bool {
			ap, _ := a.AddrPort()
			return ap == n.Addr
		}) {
			t.Errorf("%v: source %q did not tell us about it", n, r.Source)
		}
	}
	switch want {
	case Reachable:
		h := r.Handshake
		v := n.Version()
		if h == nil {
			t.Errorf("%v: reachable without version data", n)
			return
		}
		if h.UserAgent != v.UserAgent || h.StartHeight != v.StartHeight || h.Protocol != v.Protocol ||
			h.Relay != v.Relay || h.ServiceBits != uint64(v.Services) ||
			!slices.Equal(h.Services, []string{"NODE_NETWORK", "NODE_WITNESS"}) {
			t.Errorf("%v: recorded %+v, node announced %+v", n, *h, v)
		}
		if r.ConnectMs <= 0 || h.HandshakeMs <= 0 {
			t.Errorf("%v: connect %v ms, handshake %v ms; want both > 0", n, r.ConnectMs, h.HandshakeMs)
		}
		wantAddrs, wantEnded := len(n.Peers()), EndedAnswer
		if n.Kind == simnet.Mute {
			wantAddrs, wantEnded = 0, EndedNoAnswer
		}
		if h.AddrsReturned != wantAddrs || h.AddrsNew > h.AddrsReturned || h.Ended != wantEnded {
			t.Errorf("%v: addrs returned %d (new %d), ended %q; want %d, ended %q",
				n, h.AddrsReturned, h.AddrsNew, h.Ended, wantAddrs, wantEnded)
		}
	case VersionTooOld:
		if r.Handshake == nil || r.Protocol != simnet.OldProtocol || r.HandshakeMs != 0 {
			t.Errorf("%v: version data %+v, want protocol %d and no handshake time", n, r.Handshake, simnet.OldProtocol)
		}
	case ClosedAfterVerack:
		if r.Handshake == nil || r.UserAgent != n.Version().UserAgent || r.AddrsReturned != 0 {
			t.Errorf("%v: version data %+v", n, r.Handshake)
		}
	case Refused, Timeout, Reset, HandshakeFailed:
		if r.Error == "" || r.Handshake != nil {
			t.Errorf("%v: error %q, version data %+v; want an error and no version", n, r.Error, r.Handshake)
		}
	}
	if want.Failed() && r.Error == "" {
		t.Errorf("%v: failed without an error", n)
	}
}

// TestCrawlInterrupted cancels a crawl halfway: it stops promptly, every
// line is complete, and the summary says it was interrupted.
func TestCrawlInterrupted(t *testing.T) {
	s := newSim(t, simnet.Options{})
	g, err := s.Build(simnet.Layout{Count: map[simnet.Kind]int{simnet.Good: 150, simnet.Stall: 30}, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	rec := newDialRecorder(t, s.Prefix())
	sink := newMemSink()
	ctx, cancel := context.WithCancel(testContext(t))
	var once sync.Once
	sink.onRecord = func(n int) {
		if n >= 40 {
			once.Do(cancel)
		}
	}
	cfg := simConfig(s, g, rec, sink)
	cfg.Concurrency = 8
	cfg.HandshakeTimeout = 5 * time.Second // stalls hold their slots past the interruption
	cfg.Quiet = 300 * time.Millisecond
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := c.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("interrupted after %d records: %d pending, %d abandoned", sum.Records, sum.Pending, sum.Abandoned)
	if !sum.Interrupted {
		t.Error("summary not marked interrupted")
	}
	if sum.Pending == 0 {
		t.Error("nothing pending after an interruption halfway")
	}
	if _, _, open, _ := rec.snapshot(); open != 0 {
		t.Errorf("%d connections open after Run", open)
	}
	recs, lineSum := parseLines(t, sink.lines.Bytes())
	if lineSum == nil || !lineSum.Interrupted || len(recs) != sum.Records {
		t.Errorf("lines: %d records, summary %+v; want %d records and an interrupted summary", len(recs), lineSum, sum.Records)
	}
	for _, r := range recs {
		if r.Outcome == Reachable && r.Ended == EndedInterrupted && r.Handshake == nil {
			t.Errorf("%s: interrupted reachable without version data", r.Addr)
		}
	}
	// Every dial is a recorded attempt or an abandoned one: nothing was
	// dialled and then forgotten.
	dials, _, _, _ := rec.snapshot()
	if len(dials) != sum.Tried+sum.Abandoned || sum.Tried != sum.Records {
		t.Errorf("%d dials, %d tried + %d abandoned, %d records", len(dials), sum.Tried, sum.Abandoned, sum.Records)
	}
}

// TestCrawlMaxNodes caps the address book.
func TestCrawlMaxNodes(t *testing.T) {
	s := newSim(t, simnet.Options{})
	g, err := s.Build(simnet.Layout{Count: map[simnet.Kind]int{simnet.Good: 60}, Fanout: 5, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	rec := newDialRecorder(t, s.Prefix())
	sink := newMemSink()
	cfg := simConfig(s, g, rec, sink)
	cfg.MaxNodes = 20
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := c.Run(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	dials, _, _, _ := rec.snapshot()
	if sum.Discovered != 20 || sum.Records != 20 || len(dials) != 20 || sum.Dropped == 0 {
		t.Errorf("discovered %d, records %d, dials %d, dropped %d; want 20, 20, 20 and some dropped",
			sum.Discovered, sum.Records, len(dials), sum.Dropped)
	}
}

// TestCrawlDNSSeeds starts from the network's DNS seeds, resolved through
// the injected resolver only.
func TestCrawlDNSSeeds(t *testing.T) {
	s := newSim(t, simnet.Options{Network: &wire.Mainnet})
	seedNode, err := s.Add(simnet.Spec{Kind: simnet.Good, Port: wire.Mainnet.DefaultPort})
	if err != nil {
		t.Fatalf("binding a node on port %d: %v", wire.Mainnet.DefaultPort, err)
	}
	other, err := s.Add(simnet.Spec{Kind: simnet.Mute})
	if err != nil {
		t.Fatal(err)
	}
	seedNode.SetPeers([]wire.NetAddrV2{other.Entry()})
	var mu sync.Mutex
	var asked []string
	rec := newDialRecorder(t, s.Prefix())
	sink := newMemSink()
	cfg := Config{
		Session: peer.DefaultConfig(&wire.Mainnet),
		Allow:   []netip.Prefix{s.Prefix()},
		Quiet:   100 * time.Millisecond, GetAddrTimeout: 2 * time.Second,
		Dial: rec.dial,
		Resolve: func(ctx context.Context, host string) ([]netip.Addr, error) {
			mu.Lock()
			defer mu.Unlock()
			asked = append(asked, host)
			if host == wire.Mainnet.DNSSeeds[1] {
				return []netip.Addr{seedNode.Addr.Addr(), netip.MustParseAddr("9.9.9.9")}, nil
			}
			return nil, errors.New("NXDOMAIN (test)")
		},
		Out: sink,
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := c.Run(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(asked, wire.Mainnet.DNSSeeds) {
		t.Errorf("resolved %v, want the DNS seeds %v", asked, wire.Mainnet.DNSSeeds)
	}
	src := "dns:" + wire.Mainnet.DNSSeeds[1]
	got := map[string]Record{}
	for _, r := range sink.records {
		got[r.Addr] = r
	}
	if r := got[seedNode.Addr.String()]; r.Outcome != Reachable || r.Source != src {
		t.Errorf("seed node: %+v; want reachable from %s", r, src)
	}
	if r := got["9.9.9.9:8333"]; r.Outcome != NotDialled || r.Source != src {
		t.Errorf("public seed address: %+v; want not_dialled from %s", r, src)
	}
	if r := got[other.Addr.String()]; r.Outcome != Reachable || r.Source != seedNode.Addr.String() {
		t.Errorf("learned node: %+v; want reachable from %v", r, seedNode.Addr)
	}
	if sum.Records != 3 {
		t.Errorf("%d records, want 3", sum.Records)
	}
	if _, forbidden, _, _ := rec.snapshot(); len(forbidden) > 0 {
		t.Errorf("dialled outside the allowlist: %v", forbidden)
	}

	// No seed resolves: an error, and no dial.
	cfg.Resolve = func(context.Context, string) ([]netip.Addr, error) { return nil, errors.New("no network") }
	cfg.Out = newMemSink()
	c, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Run(testContext(t)); err == nil || !strings.Contains(err.Error(), "no seed address") {
		t.Errorf("Run with unresolvable seeds: %v, want a no-seed error", err)
	}
}

// TestCrawlSinkError stops the crawl when the output fails.
func TestCrawlSinkError(t *testing.T) {
	s := newSim(t, simnet.Options{})
	g, err := s.Build(simnet.Layout{Count: map[simnet.Kind]int{simnet.Good: 50}, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	rec := newDialRecorder(t, s.Prefix())
	sink := newMemSink()
	sink.failAfter = 5
	c, err := New(simConfig(s, g, rec, sink))
	if err != nil {
		t.Fatal(err)
	}
	sum, err := c.Run(testContext(t))
	if err == nil || !strings.Contains(err.Error(), "sink full") {
		t.Fatalf("Run: %v, want the sink's error", err)
	}
	if sink.summary != nil {
		t.Error("summary written to a failed sink")
	}
	if dials, _, _, _ := rec.snapshot(); len(dials) >= 50 || sum.Interrupted {
		t.Errorf("%d dials after the sink failed at record 5 (interrupted %v)", len(dials), sum.Interrupted)
	}
}

func TestNewChecks(t *testing.T) {
	ok := Config{Session: peer.DefaultConfig(&wire.Regtest), Out: newMemSink()}
	tests := []struct {
		name   string
		change func(*Config)
	}{
		{name: "no network", change: func(c *Config) { c.Session.Network = nil }},
		{name: "no output", change: func(c *Config) { c.Out = nil }},
		{name: "bad seed", change: func(c *Config) { c.Seeds = []string{"1.2.3.4:0"} }},
		{name: "bad verifier", change: func(c *Config) { c.Pipeline.Verifier = "nope" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.change(&cfg)
			if _, err := New(cfg); err == nil {
				t.Error("New accepted it")
			}
		})
	}
	c, err := New(ok)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Allowlist().String(), "127.0.0.0/8,::1/128"; got != want {
		t.Errorf("regtest default allowlist %s, want %s", got, want)
	}
}
