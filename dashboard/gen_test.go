package dashboard

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/btcpipe/btcpipe/crawler"
	"github.com/btcpipe/btcpipe/monitor"
)

// XSSAgent is the user agent of one generated node: a page that ran it
// would set window.__pwned.
const XSSAgent = `<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">/Evil:6.6/`

// genNode is one node of a generated network.
type genNode struct {
	addr, network string
	ua, ua2       string // ua2: after switchAt (upgrade), if set
	switchAt      int
	protocol      int32
	services      uint64
	lag           int32   // blocks behind the tip
	p             float64 // probability of being reachable in a snapshot
	latency       float64 // ms
	join, leave   int     // in the snapshots [join, leave)
	failure       crawler.Outcome
}

// generated is what a test can check against.
type generated struct {
	store *monitor.Store
	nodes []genNode
	ids   []int64
	// of the newest snapshot
	reachable, records int
	byNetwork          map[string]int
	byAgent            map[string]int
	latest             map[string]monitor.Observation
	// upgraded is a node reachable in every snapshot whose user agent
	// changed halfway; xss is the node with XSSAgent.
	upgraded, xss, flaky string
	// interrupted is a snapshot whose crawl was stopped (none stored).
	interrupted int64
}

var agents = []struct {
	ua string
	w  int
}{
	{"/Satoshi:28.1.0/", 30}, {"/Satoshi:27.1.0/", 22}, {"/Satoshi:27.0.0/", 12}, {"/Satoshi:26.1.0/", 9},
	{"/Satoshi:25.0.0/", 6}, {"/Satoshi:28.1.0/Knots:20250305/", 7}, {"/Satoshi:24.0.1/", 4}, {"/btcd:0.24.2/", 3},
	{"/Satoshi:22.0.0/", 2}, {"/Satoshi:0.21.1/", 2}, {"/bcoin:2.2.0/", 1}, {"/Satoshi:23.0.0/", 1}, {"/libbitcoin:3.8.0/", 1},
}

const base32 = "abcdefghijklmnopqrstuvwxyz234567"

func randString(rng *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = base32[rng.IntN(len(base32))]
	}
	return string(b)
}

// genNetwork makes n nodes for snaps snapshots, deterministically.
func genNetwork(n, snaps int, seed uint64) []genNode {
	rng := rand.New(rand.NewPCG(seed, 17))
	total := 0
	for _, a := range agents {
		total += a.w
	}
	pickUA := func() string {
		x := rng.IntN(total)
		for _, a := range agents {
			if x < a.w {
				return a.ua
			}
			x -= a.w
		}
		return agents[0].ua
	}
	nodes := make([]genNode, 0, n)
	for i := range n {
		g := genNode{ua: pickUA(), protocol: 70016, services: 0x409, p: 0.97, join: 0, leave: snaps}
		switch x := rng.IntN(100); {
		case x < 58:
			g.network, g.addr = "ipv4", fmt.Sprintf("%d.%d.%d.%d:8333", 11+rng.IntN(180), rng.IntN(256), rng.IntN(256), 1+rng.IntN(254))
			g.latency = 15 + rng.Float64()*180
		case x < 72:
			g.network, g.addr = "ipv6", fmt.Sprintf("[2a01:%x:%x::%x]:8333", rng.IntN(0xffff), rng.IntN(0xffff), 1+rng.IntN(0xfff))
			g.latency = 20 + rng.Float64()*160
		case x < 92:
			g.network, g.addr = "torv3", randString(rng, 56)+".onion:8333"
			g.latency = 300 + rng.Float64()*1500
		case x < 97:
			g.network, g.addr = "i2p", randString(rng, 52)+".b32.i2p:8333"
			g.latency = 600 + rng.Float64()*2500
		default:
			g.network, g.addr = "cjdns", fmt.Sprintf("[fc%02x:%x:%x::%x]:8333", rng.IntN(256), rng.IntN(0xffff), rng.IntN(0xffff), 1+rng.IntN(0xfff))
			g.latency = 40 + rng.Float64()*200
		}
		if rng.IntN(100) < 35 {
			g.services |= 0x800 // NODE_P2P_V2
		}
		if rng.IntN(100) < 8 {
			g.services |= 0x40 // NODE_COMPACT_FILTERS
		}
		if rng.IntN(100) < 5 {
			g.services = 0x408 // pruned: no NODE_NETWORK
		}
		switch x := rng.IntN(100); {
		case x < 80:
			g.lag = 0
		case x < 90:
			g.lag = int32(1 + rng.IntN(3))
		case x < 96:
			g.lag = int32(6 + rng.IntN(90))
		default:
			g.lag = int32(200 + rng.IntN(20_000))
		}
		if g.ua == "/Satoshi:0.21.1/" || g.ua == "/Satoshi:22.0.0/" {
			g.protocol = 70015
		}
		switch x := rng.IntN(100); {
		case x < 12: // never reachable
			g.p, g.failure = 0, []crawler.Outcome{crawler.Timeout, crawler.Refused, crawler.Timeout, crawler.Reset}[rng.IntN(4)]
		case x < 22: // flaky
			g.p, g.failure = 0.3+rng.Float64()*0.4, crawler.Timeout
		case x < 28: // joined late
			g.join = snaps/3 + rng.IntN(max(snaps/2, 1))
			g.failure = crawler.Timeout
		case x < 32: // gone
			g.leave = 1 + rng.IntN(max(snaps/2, 1))
			g.failure = crawler.Refused
		default:
			g.failure = crawler.Timeout
		}
		if g.ua == "/Satoshi:26.1.0/" && rng.IntN(2) == 0 && g.p > 0.9 {
			g.ua2, g.switchAt = "/Satoshi:28.1.0/", 1+rng.IntN(max(snaps-1, 1))
		}
		if g.network != "ipv4" && g.network != "ipv6" && g.network != "cjdns" {
			g.failure = crawler.NotDialled // the crawler records what it cannot dial
			if i%3 != 0 {
				g.failure = crawler.Timeout
			}
		}
		nodes = append(nodes, g)
	}
	// Fixed roles for the tests: node 0 is always up and upgraded halfway,
	// node 1 carries the hostile user agent.
	nodes[0] = genNode{addr: "203.0.113.10:8333", network: "ipv4", ua: "/Satoshi:26.1.0/", ua2: "/Satoshi:28.1.0/", switchAt: snaps / 2,
		protocol: 70016, services: 0xc09, p: 1, latency: 42, leave: snaps, failure: crawler.Timeout}
	nodes[1] = genNode{addr: "198.51.100.66:8333", network: "ipv4", ua: XSSAgent, protocol: 70016, services: 0x409, p: 1,
		latency: 88, leave: snaps, failure: crawler.Timeout}
	// Node 2 comes and goes.
	nodes[2] = genNode{addr: "192.0.2.77:8333", network: "ipv4", ua: "/Satoshi:27.1.0/", protocol: 70016, services: 0x409, p: 0.6,
		latency: 120, leave: snaps, failure: crawler.Timeout}
	return nodes
}

// generate writes snaps snapshots of n nodes, step apart, the last one
// ending now, into a new SQLite database.
func generate(t testing.TB, n, snaps int, step time.Duration) *generated {
	t.Helper()
	ctx := context.Background()
	s, err := monitor.Open(ctx, filepath.Join(t.TempDir(), "btcpipe.db"), "vantage-test", "mainnet")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	g := &generated{store: s, nodes: genNetwork(n, snaps, 7), upgraded: "203.0.113.10:8333", xss: "198.51.100.66:8333", flaky: "192.0.2.77:8333"}
	rng := rand.New(rand.NewPCG(11, 13))
	start := time.Now().UTC().Add(-time.Duration(snaps-1) * step).Truncate(time.Second)
	const tip0 = 925_000
	for k := range snaps {
		at := start.Add(time.Duration(k) * step)
		tip := int32(tip0 + k*int(step/(10*time.Minute)))
		obs := make([]monitor.Observation, 0, n)
		reachable := map[string]monitor.Observation{}
		for _, nd := range g.nodes {
			if k < nd.join || k >= nd.leave {
				continue
			}
			o := monitor.Observation{Addr: nd.addr, Network: nd.network, Time: at.Add(time.Duration(rng.IntN(50_000)) * time.Millisecond), Transport: "v1"}
			if rng.Float64() < nd.p {
				o.Outcome, o.Version = crawler.Reachable, true
				o.ConnectMs = nd.latency * (0.8 + 0.4*rng.Float64())
				o.HandshakeMs = o.ConnectMs * 2.1
				o.Protocol, o.Services, o.UserAgent, o.Relay, o.AddrsReturned = nd.protocol, nd.services, nd.ua, true, 1000
				if nd.ua2 != "" && k >= nd.switchAt {
					o.UserAgent = nd.ua2
				}
				o.StartHeight = tip - nd.lag
				reachable[nd.addr] = o
			} else {
				o.Outcome = nd.failure
				switch o.Outcome {
				case crawler.NotDialled:
					o.Transport = ""
				case crawler.Timeout:
					o.Error = "dial tcp: i/o timeout"
				case crawler.Refused:
					o.Error = "connection refused"
				case crawler.Reset:
					o.Error = "connection reset by peer"
				}
			}
			obs = append(obs, o)
		}
		id, err := s.BeginSnapshot(ctx, at)
		if err != nil {
			t.Fatal(err)
		}
		snap := &monitor.Snapshot{ID: id, Network: "mainnet", Started: at, Finished: at.Add(3*time.Minute + time.Duration(rng.IntN(60))*time.Second), Obs: obs}
		snap.Summary.Discovered, snap.Summary.Tried = len(obs), len(obs)-len(obs)/8
		if err := s.WriteSnapshot(ctx, snap); err != nil {
			t.Fatal(err)
		}
		g.ids = append(g.ids, id)
		if k == snaps/2 && snaps > 2 { // a crawl stopped halfway through
			iid, err := s.BeginSnapshot(ctx, at.Add(step/2))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.MarkInterrupted(ctx, iid, at.Add(step/2+time.Minute)); err != nil {
				t.Fatal(err)
			}
			g.interrupted = iid
		}
		if k == snaps-1 {
			g.records, g.reachable, g.latest = len(obs), len(reachable), reachable
			g.byNetwork, g.byAgent = map[string]int{}, map[string]int{}
			for _, o := range reachable {
				g.byNetwork[o.Network]++
				g.byAgent[o.UserAgent]++
			}
		}
	}
	return g
}

// mux is what btcpipe monitor serves: the API and the dashboard.
func mux(s *monitor.Store, d *Dashboard) http.Handler {
	m := http.NewServeMux()
	monitor.NewAPI(s, nil, nil).Register(m)
	m.Handle("/", d)
	return m
}
