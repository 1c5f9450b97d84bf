// Package simnet is a simulated Bitcoin network on loopback, for testing the
// crawler: real TCP listeners on many loopback addresses (Linux routes all
// of 127.0.0.0/8 to lo, so 127.X.Y.Z can be bound without any setup),
// speaking the protocol through the wire package. Each node has its own user
// agent, height and services, and answers getaddr with a configured list of
// other nodes' addresses; nodes of other kinds refuse connections, accept
// and stall, never accept, send garbage, close right after verack, reset
// the connection, announce an old protocol version or mirror the dialler's
// nonce.
//
// A Net allocates node addresses in one prefix (by default a random
// 127.X.0.0/16 with X in 16..250, so that two simulated networks in
// concurrent test processes rarely share one); nothing outside loopback is
// ever bound or dialled. Close stops every listener and connection and waits
// for every goroutine.
package simnet

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"

	"github.com/btcpipe/btcpipe/wire"
)

// Kind is how a node behaves.
type Kind int

// Node kinds.
const (
	// Good completes the handshake, answers the first getaddr of a
	// connection with its peers (addrv2 if asked with sendaddrv2, else
	// addr, in messages of at most 1,000), answers pings, and keeps the
	// connection open until the other side closes it.
	Good Kind = iota
	// Mute completes the handshake but never answers getaddr.
	Mute
	// Refused has nothing listening: a connect is refused.
	Refused
	// Stall accepts the connection and never sends a byte.
	Stall
	// Blackhole never accepts: its listen queue is full, so a connect
	// times out (SYNs are dropped).
	Blackhole
	// Garbage answers the dialler's version with bytes that are not a
	// frame (a bad magic).
	Garbage
	// CloseAfterVerack completes the handshake and closes the connection
	// on the first message it receives after the dialler's verack.
	CloseAfterVerack
	// Reset reads the dialler's version and resets the connection (RST).
	Reset
	// OldVersion announces protocol version 60002.
	OldVersion
	// Mirror answers with a version carrying the dialler's own nonce, as
	// a connection to oneself would.
	Mirror
)

var kindNames = [...]string{
	Good: "good", Mute: "mute", Refused: "refused", Stall: "stall", Blackhole: "blackhole",
	Garbage: "garbage", CloseAfterVerack: "close_after_verack", Reset: "reset",
	OldVersion: "old_version", Mirror: "mirror",
}

// Kinds lists every kind.
var Kinds = []Kind{Good, Mute, Refused, Stall, Blackhole, Garbage, CloseAfterVerack, Reset, OldVersion, Mirror}

func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// OldProtocol is the protocol version OldVersion nodes announce.
const OldProtocol = 60002

// Options configure a Net.
type Options struct {
	// Network gives the magic the nodes speak (default regtest).
	Network *wire.Network
	// Prefix is where node addresses are allocated; it must lie inside
	// 127.0.0.0/8. Default: a random 127.X.0.0/16, X in 16..250.
	Prefix netip.Prefix
}

// Net is a simulated network. Its methods are safe for concurrent use.
type Net struct {
	magic  wire.Magic
	prefix netip.Prefix

	mu     sync.Mutex
	next   netip.Addr
	nodes  []*Node
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// New returns an empty simulated network.
func New(opts Options) (*Net, error) {
	if opts.Network == nil {
		opts.Network = &wire.Regtest
	}
	p := opts.Prefix
	if !p.IsValid() {
		p = netip.PrefixFrom(netip.AddrFrom4([4]byte{127, byte(16 + rand.IntN(235)), 0, 0}), 16)
	}
	p = p.Masked()
	if !p.Addr().Is4() || !netip.MustParsePrefix("127.0.0.0/8").Overlaps(p) || p.Bits() < 8 || p.Bits() > 30 {
		return nil, fmt.Errorf("simnet: prefix %v is not a loopback IPv4 prefix of /8 to /30", p)
	}
	return &Net{magic: opts.Network.Magic, prefix: p, next: p.Addr(), conns: map[net.Conn]struct{}{}}, nil
}

// Prefix returns the prefix the nodes' addresses are allocated in.
func (s *Net) Prefix() netip.Prefix { return s.prefix }

// Magic returns the network magic the nodes speak.
func (s *Net) Magic() wire.Magic { return s.magic }

// Nodes returns the nodes added so far.
func (s *Net) Nodes() []*Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Node(nil), s.nodes...)
}

// Spec describes a node to add.
type Spec struct {
	Kind Kind
	// Port to listen on; 0 picks a free one.
	Port uint16
	// What the node's version says. Zero values get defaults: user agent
	// "/simnet:0.1.0/IP/", protocol 70016 (OldProtocol for OldVersion),
	// services NODE_NETWORK|NODE_WITNESS. Height and Relay are used as
	// given.
	UserAgent string
	Protocol  int32
	Services  wire.ServiceFlag
	Height    int32
	Relay     bool
	// Listen, if valid, is the address to listen on instead of the next
	// one of the prefix: ::1 for an IPv6 node, an fc00::/8 address of a
	// network namespace for a CJDNS node.
	Listen netip.Addr
}

// ErrClosed is returned by Add after Close.
var ErrClosed = errors.New("simnet: closed")

// Add allocates the next address of the prefix and starts a node of
// spec.Kind there (for Refused, only reserves the address and a port that
// nothing listens on).
func (s *Net) Add(spec Spec) (*Node, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	ip, err := spec.Listen, error(nil)
	if !ip.IsValid() {
		ip, err = s.allocate()
	}
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	n := &Node{Kind: spec.Kind, net: s}
	n.version = wire.Version{
		Protocol:    spec.Protocol,
		Services:    spec.Services,
		UserAgent:   spec.UserAgent,
		StartHeight: spec.Height,
		Relay:       spec.Relay,
	}
	if n.version.Protocol == 0 {
		n.version.Protocol = wire.ProtocolVersion
		if spec.Kind == OldVersion {
			n.version.Protocol = OldProtocol
		}
	}
	if n.version.Services == 0 {
		n.version.Services = wire.NodeNetwork | wire.NodeWitness
	}
	if n.version.UserAgent == "" {
		n.version.UserAgent = "/simnet:0.1.0/" + ip.String() + "/"
	}
	if err := n.listen(netip.AddrPortFrom(ip, spec.Port)); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		n.closeListener()
		return nil, ErrClosed
	}
	s.nodes = append(s.nodes, n)
	if n.ln != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			n.acceptLoop()
		}()
	}
	return n, nil
}

// allocate returns the next free address of the prefix, skipping those
// ending in .0 and .255.
func (s *Net) allocate() (netip.Addr, error) {
	for {
		ip := s.next.Next()
		if !ip.IsValid() || !s.prefix.Contains(ip) {
			return netip.Addr{}, fmt.Errorf("simnet: prefix %v is full", s.prefix)
		}
		s.next = ip
		if b := ip.As4(); b[3] != 0 && b[3] != 255 {
			return ip, nil
		}
	}
}

// track registers a connection so that Close can close it; it reports false
// (and the caller must close c) once the net is closed.
func (s *Net) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Net) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// Close stops every node and closes every connection, and returns when
// every goroutine of the net has ended.
func (s *Net) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	nodes := s.nodes
	conns := make([]net.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	var errs []error
	for _, n := range nodes {
		if err := n.closeListener(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, c := range conns {
		c.Close()
	}
	s.wg.Wait()
	return errors.Join(errs...)
}
