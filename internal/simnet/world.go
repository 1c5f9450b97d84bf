package simnet

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/btcpipe/btcpipe/wire"
)

// World describes a network shaped like the real one, for BuildWorld:
// reachable nodes on all five BIP155 networks and, for each of them,
// addresses that lead nowhere.
type World struct {
	// Reachable is the number of Good nodes (at least 1).
	Reachable int
	// Share is the fraction of reachable nodes on each network other than
	// IPv4 (which takes the rest). A network whose way in is missing
	// (Onion, I2P, IPv6, CJDNS below) gets no nodes. The real network's
	// shape (July 2023): Tor v3 0.54, IPv6 0.08, I2P 0.04.
	Share map[wire.NetID]float64
	// Onion registers a node listening at target behind a (fake) Tor
	// SOCKS proxy and returns its .onion address; nil: no Tor nodes.
	Onion func(target netip.AddrPort) wire.NetAddrV2
	// I2P registers a node behind a (fake) SAM bridge and returns its
	// .b32.i2p address; nil: no I2P nodes.
	I2P func(target netip.AddrPort) wire.NetAddrV2
	// IPv6 is the address IPv6 nodes listen on (each on its own port),
	// usually ::1; invalid: no IPv6 nodes.
	IPv6 netip.Addr
	// CJDNS is an fc00::/8 address the CJDNS nodes listen on (inside a
	// network namespace: it must be on its loopback); invalid: none.
	CJDNS netip.Addr
	// MultiNetwork IPv4 nodes are also reachable as Tor nodes (the same
	// listener behind the proxy) and announce their onion address as
	// their own when dialled on IPv4. Needs Onion.
	MultiNetwork int
	// Dead is, per reachable node, how many addresses that lead nowhere
	// its answer names.
	Dead DeadMix
	// BlackholePrefix holds addresses that never answer a SYN (routed
	// into an empty network namespace); UnroutablePrefix addresses with
	// no route at all. Both must be valid when their count is not 0.
	BlackholePrefix, UnroutablePrefix netip.Prefix
	// Fanout, Seed and Height are as in Layout.
	Fanout int
	Seed   uint64
	Height int32
}

// DeadMix counts dead addresses of each kind per reachable node.
type DeadMix struct {
	// Blackhole: an address in BlackholePrefix (a connect times out).
	Blackhole int
	// Refused: an address of the loopback prefix nothing listens on.
	Refused int
	// Stale: a black-hole address announced with a timestamp 30 days old
	// (a crawler with a maximum age must skip it; one that dials it
	// waits for the connect timeout).
	Stale int
	// Unroutable: an address in UnroutablePrefix (no route: the connect
	// fails at once).
	Unroutable int
}

// Total is the number of dead addresses per reachable node.
func (d DeadMix) Total() int { return d.Blackhole + d.Refused + d.Stale + d.Unroutable }

// WorldGraph is a built world.
type WorldGraph struct {
	*Graph
	// ByNetwork counts the reachable nodes by the network they are named
	// on (a multi-network node counts on both).
	ByNetwork map[wire.NetID]int
	// Named is every reachable node's advertised addresses.
	Named map[*Node][]wire.NetAddrV2
	// Blackholes, Refused, Stale and Unroutable are the dead addresses.
	Blackholes, Refused, Stale, Unroutable []wire.NetAddrV2
}

// Addresses is the number of distinct addresses of the world: reachable
// ones (each network's name of a node) and dead ones.
func (w *WorldGraph) Addresses() int {
	n := len(w.Blackholes) + len(w.Refused) + len(w.Stale) + len(w.Unroutable)
	for _, c := range w.ByNetwork {
		n += c
	}
	return n
}

// staleAge is how old a Stale address's timestamp is.
const staleAge = 30 * 24 * time.Hour

// BuildWorld adds w's nodes to s. Reachable nodes form a chain from the
// seed (each names the next, Fanout random others, and its share of the
// dead addresses), so a crawl finds every one of them only through addr
// replies.
func (s *Net) BuildWorld(w World) (*WorldGraph, error) {
	if w.Reachable < 1 {
		return nil, fmt.Errorf("simnet: a world needs at least one reachable node")
	}
	if (w.Dead.Blackhole+w.Dead.Stale > 0 && !w.BlackholePrefix.IsValid()) || (w.Dead.Unroutable > 0 && !w.UnroutablePrefix.IsValid()) {
		return nil, fmt.Errorf("simnet: dead addresses need their prefixes")
	}
	if w.MultiNetwork > 0 && w.Onion == nil {
		return nil, fmt.Errorf("simnet: multi-network nodes need Onion")
	}
	if w.Fanout <= 0 {
		w.Fanout = 3
	}
	rng := rand.New(rand.NewPCG(w.Seed, 0x776f726c64)) // "world"
	count := map[wire.NetID]int{}
	ways := map[wire.NetID]bool{
		wire.NetTorV3: w.Onion != nil, wire.NetI2P: w.I2P != nil,
		wire.NetIPv6: w.IPv6.IsValid(), wire.NetCJDNS: w.CJDNS.IsValid(),
	}
	rest := w.Reachable
	for _, n := range []wire.NetID{wire.NetTorV3, wire.NetIPv6, wire.NetI2P, wire.NetCJDNS} {
		if ways[n] {
			count[n] = min(int(float64(w.Reachable)*w.Share[n]), rest)
			rest -= count[n]
		}
	}
	count[wire.NetIPv4] = rest
	if rest < 1 {
		return nil, fmt.Errorf("simnet: no IPv4 node left for the seed")
	}
	wg := &WorldGraph{Graph: &Graph{ByAddr: map[netip.AddrPort]*Node{}}, ByNetwork: map[wire.NetID]int{}, Named: map[*Node][]wire.NetAddrV2{}}
	var good []*Node
	height := w.Height
	for _, netID := range []wire.NetID{wire.NetIPv4, wire.NetIPv6, wire.NetTorV3, wire.NetI2P, wire.NetCJDNS} {
		for range count[netID] {
			spec := Spec{Kind: Good, Height: height, Relay: height%2 == 0}
			switch netID {
			case wire.NetIPv6:
				spec.Listen = w.IPv6
			case wire.NetCJDNS:
				spec.Listen = w.CJDNS
			}
			n, err := s.Add(spec)
			if err != nil {
				return nil, err
			}
			height++
			switch netID {
			case wire.NetTorV3:
				n.SetAdvertised(w.Onion(n.Addr))
			case wire.NetI2P:
				n.SetAdvertised(w.I2P(n.Addr))
			case wire.NetCJDNS:
				n.SetAdvertised(wire.NetAddrV2{Network: wire.NetCJDNS, Port: n.Addr.Port()}.WithIP(n.Addr.Addr()))
			}
			wg.Nodes = append(wg.Nodes, n)
			wg.ByAddr[n.Addr] = n
			wg.ByNetwork[netID]++
			wg.Named[n] = []wire.NetAddrV2{n.Entry()}
			good = append(good, n)
		}
	}
	seed := good[0] // an IPv4 node
	for i := 1; i <= w.MultiNetwork && i < count[wire.NetIPv4]; i++ {
		n := good[i]
		onion := w.Onion(n.Addr)
		onion.Services = n.version.Services
		n.SetSelfAnnounce([]wire.NetAddrV2{onion})
		wg.Named[n] = append(wg.Named[n], onion)
		wg.ByNetwork[wire.NetTorV3]++
	}
	rng.Shuffle(len(good)-1, func(i, j int) { good[i+1], good[j+1] = good[j+1], good[i+1] })

	now := uint32(time.Now().Unix())
	used := map[netip.Addr]bool{}
	pick := func(p netip.Prefix) netip.Addr {
		for {
			b := p.Addr().As16()
			bits := p.Bits()
			if p.Addr().Is4() {
				bits += 96
			}
			for i := bits / 8; i < 16; i++ {
				r := byte(rng.Uint32())
				if i == bits/8 && bits%8 != 0 {
					r &= 0xff >> (bits % 8)
				}
				b[i] |= r
			}
			a := netip.AddrFrom16(b)
			if p.Addr().Is4() {
				a = a.Unmap()
			}
			if !used[a] && p.Contains(a) {
				used[a] = true
				return a
			}
		}
	}
	entry := func(ip netip.Addr, port uint16, t uint32) wire.NetAddrV2 {
		return wire.NetAddrV2FromAddrPort(netip.AddrPortFrom(ip, port), wire.NodeNetwork|wire.NodeWitness, t)
	}
	answers := make([][]wire.NetAddrV2, len(good))
	for i := range good {
		if i+1 < len(good) {
			answers[i] = append(answers[i], wg.Named[good[i+1]]...)
		}
		for range w.Fanout {
			if j := rng.IntN(len(good)); j != i {
				answers[i] = append(answers[i], wg.Named[good[j]][0])
			}
		}
		for range w.Dead.Blackhole {
			e := entry(pick(w.BlackholePrefix), 8333, now)
			wg.Blackholes = append(wg.Blackholes, e)
			answers[i] = append(answers[i], e)
		}
		for range w.Dead.Stale {
			e := entry(pick(w.BlackholePrefix), 8333, now-uint32(staleAge/time.Second))
			wg.Stale = append(wg.Stale, e)
			answers[i] = append(answers[i], e)
		}
		for range w.Dead.Unroutable {
			e := entry(pick(w.UnroutablePrefix), 8333, now)
			wg.Unroutable = append(wg.Unroutable, e)
			answers[i] = append(answers[i], e)
		}
		for range w.Dead.Refused {
			s.mu.Lock()
			ip, err := s.allocate() // never listened on: refused
			s.mu.Unlock()
			if err != nil {
				return nil, err
			}
			e := entry(ip, 8333, now)
			wg.Refused = append(wg.Refused, e)
			answers[i] = append(answers[i], e)
		}
	}
	for i, n := range good {
		rng.Shuffle(len(answers[i]), func(a, b int) { answers[i][a], answers[i][b] = answers[i][b], answers[i][a] })
		n.SetPeers(answers[i])
	}
	wg.Seeds = []netip.AddrPort{seed.Addr}
	return wg, nil
}
