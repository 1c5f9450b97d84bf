package simnet

import (
	"fmt"
	"math/rand/v2"
	"net/netip"

	"github.com/btcpipe/btcpipe/wire"
)

// Layout describes a network to Build: how many nodes of each kind, how the
// good ones point at each other, and addresses that must never be dialled.
type Layout struct {
	// Count is the number of nodes of each kind. Good must be at least 1.
	Count map[Kind]int
	// Fanout is how many random Good nodes each Good node names besides
	// the next one in the chain (default 3).
	Fanout int
	// Decoys are extra addresses spread over the answers (each in at
	// least one): public, private, Tor, I2P, CJDNS… addresses a crawler
	// must record but not dial.
	Decoys []wire.NetAddrV2
	// Seed makes the layout reproducible.
	Seed uint64
	// Height is the start height of the first node; node i has Height+i.
	Height int32
}

// Graph is a built network.
type Graph struct {
	// Seeds are where a crawl should start: the first Good node only.
	Seeds []netip.AddrPort
	// Nodes are all nodes, in the order added.
	Nodes []*Node
	// ByAddr finds a node by address.
	ByAddr map[netip.AddrPort]*Node
}

// Build adds the nodes of l to s and sets the Good nodes' answers so that
// every node can be reached from the seed only through chains of addr
// replies: the Good nodes, shuffled, form a chain g0 → g1 → … (each names
// the next), each also names Fanout random Good nodes, and every node of the
// other kinds and every decoy is named by at least one random Good node.
// Only g0 is a seed.
func (s *Net) Build(l Layout) (*Graph, error) {
	if l.Count[Good] < 1 {
		return nil, fmt.Errorf("simnet: a layout needs at least one good node")
	}
	if l.Fanout <= 0 {
		l.Fanout = 3
	}
	rng := rand.New(rand.NewPCG(l.Seed, 0x73696d6e6574)) // "simnet"
	g := &Graph{ByAddr: map[netip.AddrPort]*Node{}}
	var good, others []*Node
	height := l.Height
	for _, k := range Kinds {
		for range l.Count[k] {
			n, err := s.Add(Spec{Kind: k, Height: height, Relay: height%2 == 0})
			if err != nil {
				return nil, err
			}
			height++
			g.Nodes = append(g.Nodes, n)
			g.ByAddr[n.Addr] = n
			if k == Good {
				good = append(good, n)
			} else {
				others = append(others, n)
			}
		}
	}
	rng.Shuffle(len(good), func(i, j int) { good[i], good[j] = good[j], good[i] })
	answers := make([][]wire.NetAddrV2, len(good))
	named := make([]map[netip.AddrPort]bool, len(good))
	add := func(i int, e wire.NetAddrV2) {
		if named[i] == nil {
			named[i] = map[netip.AddrPort]bool{}
		}
		if ap, ok := e.AddrPort(); ok && e.Network != wire.NetCJDNS {
			if named[i][ap] {
				return
			}
			named[i][ap] = true
		}
		answers[i] = append(answers[i], e)
	}
	for i := range good {
		if i+1 < len(good) {
			add(i, good[i+1].Entry())
		}
		for range l.Fanout {
			if j := rng.IntN(len(good)); j != i {
				add(i, good[j].Entry())
			}
		}
	}
	for _, n := range others {
		add(rng.IntN(len(good)), n.Entry())
	}
	for _, d := range l.Decoys {
		add(rng.IntN(len(good)), d)
	}
	for i, n := range good {
		rng.Shuffle(len(answers[i]), func(a, b int) { answers[i][a], answers[i][b] = answers[i][b], answers[i][a] })
		n.SetPeers(answers[i])
	}
	g.Seeds = []netip.AddrPort{good[0].Addr}
	return g, nil
}

// StandardDecoys returns addresses a crawler confined to loopback must
// record and never dial: public IPv4 and IPv6, private, link-local,
// documentation and loopback-outside-the-prefix addresses, Tor v3, I2P and
// CJDNS entries, and an address inside prefix with port 0.
func StandardDecoys(prefix netip.Prefix) []wire.NetAddrV2 {
	ip := func(s string, port uint16) wire.NetAddrV2 {
		return wire.NetAddrV2FromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(s), port), wire.NodeNetwork, 0)
	}
	last := prefix.Addr().As4()
	last[2], last[3] = 255, 254 // inside any /16 or wider; the allocator fills it last
	var tor, i2p [32]byte
	for i := range tor {
		tor[i], i2p[i] = byte(i+1), byte(0xa0+i)
	}
	return []wire.NetAddrV2{
		ip("1.2.3.4", 8333),
		ip("8.8.8.8", 8333),
		ip("2001:4860:4860::8888", 8333),
		ip("10.0.0.1", 8333),
		ip("172.16.5.4", 18444),
		ip("192.168.1.1", 8333),
		ip("169.254.1.1", 8333),
		ip("100.64.0.1", 8333),
		ip("192.0.2.1", 8333),
		ip("fd00::1", 8333),
		ip("fe80::1", 8333),
		ip("127.0.0.1", 1),
		ip("::1", 18444),
		wire.NetAddrV2FromAddrPort(netip.AddrPortFrom(netip.AddrFrom4(last), 0), 0, 0),
		wire.NetAddrV2{Network: wire.NetTorV3, Port: 8333, Services: wire.NodeNetwork}.WithKey(tor),
		wire.NetAddrV2{Network: wire.NetI2P, Port: 0, Services: wire.NodeNetwork}.WithKey(i2p),
		wire.NetAddrV2{Network: wire.NetCJDNS, Port: 8333}.WithIP(netip.MustParseAddr("fc32:17ea:e415:c3bf:9808:149d:b5a2:c9aa")),
	}
}
