package report_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/btcpipe/btcpipe/crawler"
	"github.com/btcpipe/btcpipe/internal/simnet"
	"github.com/btcpipe/btcpipe/peer"
	"github.com/btcpipe/btcpipe/wire"
)

// agentMix is the user agents of the simulated good nodes, with weights:
// roughly what a mainnet crawl sees, with a long tail so that the chart has
// an "other" bar.
var agentMix = []struct {
	ua       string
	protocol int32
	weight   int
}{
	{"/Satoshi:28.1.0/", 70016, 260}, {"/Satoshi:27.1.0/", 70016, 200}, {"/Satoshi:28.0.0/", 70016, 120},
	{"/Satoshi:27.2.0/", 70016, 90}, {"/Satoshi:26.1.0/", 70016, 70}, {"/Satoshi:25.0.0/", 70016, 50},
	{"/Satoshi:28.1.0/Knots:20250305/", 70016, 45}, {"/Satoshi:24.0.1/", 70016, 30}, {"/Satoshi:22.0.0/", 70016, 22},
	{"/Satoshi:27.1.0/Knots:20240801/", 70016, 20}, {"/Satoshi:23.0.0/", 70016, 18}, {"/btcd:0.24.2/", 70016, 12},
	{"/Satoshi:0.21.1/", 70016, 10}, {"/Satoshi:0.20.1/", 70015, 8}, {"/Satoshi:26.0.0/", 70016, 8},
	{"/Satoshi:0.18.0/", 70015, 5}, {"/Satoshi:0.19.1/", 70015, 4}, {"/bcoin:2.2.0/", 70015, 3},
	{"/Satoshi:0.17.1/", 70015, 3}, {"/libbitcoin:3.8.0/", 70014, 2}, {"/Satoshi:0.16.3/", 70015, 2},
	{"/btcwire:0.5.0/btcd:0.23.4/", 70016, 2}, {"/Satoshi:0.13.2/", 70014, 1},
}

// tee hands every record and the summary to each sink in turn.
type tee []crawler.Sink

func (t tee) Record(r *crawler.Record) error {
	for _, s := range t {
		if err := s.Record(r); err != nil {
			return err
		}
	}
	return nil
}

func (t tee) Summary(sum *crawler.Summary) error {
	for _, s := range t {
		if err := s.Summary(sum); err != nil {
			return err
		}
	}
	return nil
}

// latencyConn delays each of the first few reads, as a distant peer would,
// so that handshake latencies spread like a real network's.
type latencyConn struct {
	net.Conn
	delay time.Duration
	mu    sync.Mutex
	reads int
}

func (c *latencyConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	c.reads++
	slow := c.reads <= 2
	c.mu.Unlock()
	if slow {
		time.Sleep(c.delay)
	}
	return c.Conn.Read(p)
}

// buildSim adds a network of good nodes with realistic versions, nodes of
// every failing kind, and decoy addresses of every network type, to s. The
// good nodes form a chain from the seed (each names the next and three
// random others); every other node and decoy is named by a random good node.
func buildSim(t testing.TB, s *simnet.Net, good int, seed uint64) (seeds []string) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 0x7265706f7274)) // "report"
	totalWeight := 0
	for _, a := range agentMix {
		totalWeight += a.weight
	}
	const tip = 873_412
	var goods, others []*simnet.Node
	for i := range good {
		pick := rng.IntN(totalWeight)
		a := agentMix[0]
		for _, m := range agentMix {
			if pick < m.weight {
				a = m
				break
			}
			pick -= m.weight
		}
		services := wire.NodeNetwork | wire.NodeWitness | wire.NodeNetworkLimited
		switch r := rng.IntN(100); {
		case r < 8: // pruned
			services = wire.NodeWitness | wire.NodeNetworkLimited
		case r < 14:
			services |= wire.NodeBloom
		case r < 20:
			services |= wire.NodeCompactFilters
		}
		if a.protocol == 70016 && rng.IntN(100) < 45 {
			services |= wire.NodeP2PV2
		}
		height := int32(tip)
		switch r := rng.IntN(100); {
		case r < 14:
			height -= 1
		case r < 18:
			height -= int32(2 + rng.IntN(4))
		case r < 21:
			height -= int32(6 + rng.IntN(90))
		case r < 23:
			height -= int32(100 + rng.IntN(5000))
		case r < 24:
			height -= int32(20_000 + rng.IntN(400_000))
		}
		n, err := s.Add(simnet.Spec{Kind: simnet.Good, UserAgent: a.ua, Protocol: a.protocol,
			Services: services, Height: height, Relay: i%5 != 0})
		if err != nil {
			t.Fatal(err)
		}
		goods = append(goods, n)
	}
	for kind, count := range map[simnet.Kind]int{
		simnet.Mute: good / 40, simnet.Refused: good / 10, simnet.Stall: good / 30, simnet.Blackhole: good / 50,
		simnet.Garbage: good / 40, simnet.CloseAfterVerack: good / 30, simnet.Reset: good / 40,
		simnet.OldVersion: good / 60, simnet.Mirror: max(1, good/150),
	} {
		for range count {
			n, err := s.Add(simnet.Spec{Kind: kind, Height: tip})
			if err != nil {
				t.Fatal(err)
			}
			others = append(others, n)
		}
	}
	decoys := simnet.StandardDecoys(s.Prefix())
	for i := range good / 6 {
		var key [32]byte
		for j := range key {
			key[j] = byte(rng.IntN(256))
		}
		decoys = append(decoys, wire.NetAddrV2{Network: wire.NetTorV3, Port: 8333, Services: wire.NodeNetwork}.WithKey(key))
		if i%4 == 0 {
			decoys = append(decoys, wire.NetAddrV2{Network: wire.NetI2P, Port: 0, Services: wire.NodeNetwork}.WithKey(key))
		}
		if i%3 == 0 {
			ip := netip.AddrFrom16([16]byte{0x2a, 0x01, 0x4f, 0x8, byte(i), byte(i >> 8), 0, 0, 0, 0, 0, 0, 0, 0, 0, byte(i + 1)})
			decoys = append(decoys, wire.NetAddrV2FromAddrPort(netip.AddrPortFrom(ip, 8333), wire.NodeNetwork, 0))
		}
		if i%10 == 0 {
			ip := netip.AddrFrom16([16]byte{0xfc, 0x32, byte(i), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, byte(i)})
			decoys = append(decoys, wire.NetAddrV2{Network: wire.NetCJDNS, Port: 8333}.WithIP(ip))
		}
	}
	answers := make([][]wire.NetAddrV2, len(goods))
	for i := range goods {
		if i+1 < len(goods) {
			answers[i] = append(answers[i], goods[i+1].Entry())
		}
		for range 3 {
			if j := rng.IntN(len(goods)); j != i {
				answers[i] = append(answers[i], goods[j].Entry())
			}
		}
	}
	for _, n := range others {
		i := rng.IntN(len(goods))
		answers[i] = append(answers[i], n.Entry())
	}
	for _, d := range decoys {
		i := rng.IntN(len(goods))
		answers[i] = append(answers[i], d)
	}
	for i, n := range goods {
		n.SetPeers(answers[i])
	}
	return []string{goods[0].Addr.String()}
}

// runSimCrawl crawls a simulated network of good nodes (and the rest)
// confined to its prefix, with latencies drawn per connection from a
// log-normal distribution (median 20 ms, at most 1 s), into sinks.
func runSimCrawl(t testing.TB, good int, seed uint64, sinks ...crawler.Sink) crawler.Summary {
	t.Helper()
	s, err := simnet.New(simnet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("closing the simnet: %v", err)
		}
	})
	seeds := buildSim(t, s, good, seed)
	prefix := s.Prefix()
	var (
		mu  sync.Mutex
		rng = rand.New(rand.NewPCG(seed, 1))
	)
	dial := func(ctx context.Context, ap netip.AddrPort) (net.Conn, error) {
		if !prefix.Contains(ap.Addr()) || !ap.Addr().IsLoopback() {
			t.Errorf("dial of %v, outside the simulated network %v", ap, prefix)
			return nil, errors.New("outside the simulated network")
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", ap.String())
		if err != nil {
			return nil, err
		}
		mu.Lock()
		ms := math.Min(20*math.Exp(0.9*rng.NormFloat64()), 1000)
		mu.Unlock()
		return &latencyConn{Conn: c, delay: time.Duration(ms * float64(time.Millisecond))}, nil
	}
	c, err := crawler.New(crawler.Config{
		Session:          peer.DefaultConfig(&wire.Regtest),
		Seeds:            seeds,
		Allow:            []netip.Prefix{prefix},
		Concurrency:      64,
		ConnectTimeout:   2 * time.Second, // generous: a loaded machine is slow to connect
		HandshakeTimeout: 5 * time.Second,
		GetAddrTimeout:   2 * time.Second,
		Quiet:            150 * time.Millisecond,
		Dial:             dial,
		Resolve: func(context.Context, string) ([]netip.Addr, error) {
			return nil, errors.New("no name resolution in this test")
		},
		Out: tee(sinks),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sum, err := c.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Interrupted {
		t.Fatalf("the simulated crawl was interrupted: %+v", sum)
	}
	return sum
}
