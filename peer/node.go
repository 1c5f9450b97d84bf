package peer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/btcpipe/btcpipe/netreach"
	"github.com/btcpipe/btcpipe/pipeline"
	"github.com/btcpipe/btcpipe/stages"
	"github.com/btcpipe/btcpipe/wire"
)

// Defaults of NodeConfig's zero fields (MaxAddrs: DefaultMaxAddrs).
const (
	DefaultDialTimeout = 10 * time.Second
	DefaultBackoffMin  = time.Second
	DefaultBackoffMax  = 5 * time.Minute
)

// NodeConfig configures a Node.
type NodeConfig struct {
	Session Config
	// Peer is host:port, [IPv6]:port, a host name (with or without a
	// port; the network's default port is used without), ….onion:port or
	// ….b32.i2p:0 (with Reach). Empty: one
	// address resolved from the network's DNS seeds; regtest and simnet
	// default to their port on 127.0.0.1.
	Peer string
	// Pipeline configures each connection's stages (peer, magic and
	// observer are filled in per connection).
	Pipeline pipeline.Config
	// Transport is the dialer's policy (TransportV1, TransportV2,
	// TransportAuto; empty: Pipeline.Transport).
	Transport string
	// DialTimeout bounds each TCP connect (0: DefaultDialTimeout).
	DialTimeout time.Duration
	// BackoffMin and BackoffMax bound the wait between reconnects (0:
	// DefaultBackoffMin, DefaultBackoffMax).
	BackoffMin, BackoffMax time.Duration
	// MaxAddrs bounds the book of unique addresses.
	MaxAddrs int
	// Record, if set, receives every byte read from every connection.
	Record io.Writer
	// Resolve looks up a host name; nil means the system resolver.
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)
	// Dial opens a connection; nil means net.Dialer with DialTimeout.
	Dial func(ctx context.Context, addr netip.AddrPort) (net.Conn, error)
	// Reach, when set, opens every connection instead of Dial, on any
	// network (a netreach.Dialer's Dial): Peer may then be a ….onion:port
	// or ….b32.i2p:0 name, reached through its proxy or bridge.
	Reach func(ctx context.Context, a wire.NetAddrV2) (net.Conn, error)
	// ReachName, when set, opens a connection to a host name through a
	// proxy that resolves it (a netreach.Dialer's DialName, set only when
	// a clearnet proxy is configured): a Peer that is a host name is then
	// never resolved locally. Nil: host names go to Resolve.
	ReachName func(ctx context.Context, host string, port uint16) (net.Conn, error)
}

// NodeHooks let the owner follow the node (for metrics). Each may be nil.
type NodeHooks struct {
	Hooks
	// Connected is called when a TCP connection opens, Disconnected when it
	// closes (with the reason).
	Connected    func(addr netip.AddrPort)
	Disconnected func(addr netip.AddrPort, err error)
	// Reconnect is called before each wait to reconnect.
	Reconnect func(attempt int, wait time.Duration)
	// Pipeline is called with each connection's pipeline as it starts.
	Pipeline func(p *pipeline.Pipeline)
}

// Node keeps a connection to one peer up indefinitely: it connects, runs the
// pipeline with a Session, and when the connection fails or drops it
// reconnects with exponential backoff and jitter.
type Node struct {
	cfg      NodeConfig
	log      *logrus.Entry
	Hooks    NodeHooks
	Book     *AddrBook
	Counters *pipeline.Counters
	// Observer, if set, also sees every connection's stage events.
	Observer stages.Observer
	nonces   Nonces
	knownV1  AddrSet // addresses that fell back to v1
	ready    atomic.Bool
}

// NewNode returns a node; Run starts it.
func NewNode(cfg NodeConfig, log *logrus.Entry) *Node {
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.BackoffMin <= 0 {
		cfg.BackoffMin = DefaultBackoffMin
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = DefaultBackoffMax
	}
	return &Node{cfg: cfg, log: log, Book: NewAddrBook(cfg.MaxAddrs), Counters: new(pipeline.Counters)}
}

// Ready reports whether a handshake has completed on the current connection.
func (n *Node) Ready() bool { return n.ready.Load() }

// Run connects and reconnects until ctx ends; it then returns nil. It
// returns the error, without retrying, when a connection failed in a way
// that no retry can mend (see Permanent).
func (n *Node) Run(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		out := n.connectOnce(ctx, attempt)
		n.ready.Store(false)
		if ctx.Err() != nil {
			return nil
		}
		err := out.Err
		if Permanent(err) {
			return err
		}
		if out.Handshook {
			attempt = 1 // a connection that worked resets the backoff
		}
		wait := Backoff(attempt, n.cfg.BackoffMin, n.cfg.BackoffMax)
		what := "connection lost"
		if !out.Connected { // no pipeline ran: resolving or dialling failed
			what = "cannot connect"
		}
		n.log.WithError(err).WithField("attempt", attempt).Warnf("%s; reconnecting in %s", what, wait.Round(time.Millisecond))
		if n.Hooks.Reconnect != nil {
			n.Hooks.Reconnect(attempt, wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil
		}
	}
}

// Backoff returns the wait before reconnect attempt n (1-based): min·2^(n-1)
// capped at max, with equal jitter (half fixed, half random), so a fleet of
// nodes does not reconnect in step.
func Backoff(attempt int, min, max time.Duration) time.Duration {
	d := max
	if attempt < 32 {
		if e := min << (attempt - 1); e > 0 && e < max {
			d = e
		}
	}
	return d/2 + rand.N(d/2+1)
}

// connectOnce resolves, dials and runs one connection through Dialer.
func (n *Node) connectOnce(ctx context.Context, attempt int) Outcome {
	target, hostName, err := n.resolvePeer(ctx)
	if err != nil {
		return Outcome{Err: err}
	}
	d := n.dialer()
	name := target.String()
	if hostName != "" { // sent to the proxy as a name
		name = net.JoinHostPort(hostName, strconv.Itoa(int(target.Port)))
		port := target.Port
		d.Reach = func(ctx context.Context, _ wire.NetAddrV2) (net.Conn, error) {
			return n.cfg.ReachName(ctx, hostName, port)
		}
	}
	addr, _ := target.AddrPort()
	log := n.log.WithField("peer", name)
	log.WithField("attempt", attempt).Infof("connecting to %s (%s)", name, n.cfg.Session.Network.Name)
	hooks := ConnectHooks{Hooks: n.Hooks.Hooks, Started: n.Hooks.Pipeline}
	hooks.Connected = func(latency time.Duration) {
		log.WithField("connect", latency.Round(time.Microsecond).String()).Info("connected")
		if n.Hooks.Connected != nil {
			n.Hooks.Connected(addr)
		}
	}
	hooks.Handshake = func(info Info) {
		n.ready.Store(true)
		if n.Hooks.Handshake != nil {
			n.Hooks.Handshake(info)
		}
	}
	hooks.Addrs = func(list []wire.NetAddrV2) {
		added, unique := n.Book.Add(list)
		log.WithFields(logrus.Fields{"peers": len(list), "new": added, "unique": unique}).
			Infof("received %d peers (%d unique so far)", len(list), unique)
		if n.Hooks.Addrs != nil {
			n.Hooks.Addrs(list)
		}
	}
	out := d.connectNamed(ctx, target, name, log, hooks)
	if out.Connected && n.Hooks.Disconnected != nil {
		n.Hooks.Disconnected(addr, out.Err)
	}
	return out
}

// dialer is the Dialer of every connection the node opens.
func (n *Node) dialer() *Dialer {
	obs := pipeline.Observers{n.Counters}
	if n.Observer != nil {
		obs = append(obs, n.Observer)
	}
	if extra := n.cfg.Pipeline.Options.Observer; extra != nil {
		obs = append(obs, extra)
	}
	pcfg := n.cfg.Pipeline
	pcfg.Options.Observer = obs
	pcfg.Record = n.cfg.Record
	return &Dialer{Session: n.cfg.Session, Pipeline: pcfg, Dial: n.cfg.Dial, Reach: n.cfg.Reach, Timeout: n.cfg.DialTimeout, Nonces: &n.nonces,
		Transport: n.cfg.Transport, KnownV1: &n.knownV1}
}

// resolvePeer turns the configured peer (or the network's seeds) into one
// address. A .onion or .b32.i2p peer is parsed, never resolved; a host
// name is resolved unless ReachName sends it to a proxy, when hostName is
// returned with target.Port and nothing is resolved.
func (n *Node) resolvePeer(ctx context.Context) (target wire.NetAddrV2, hostName string, err error) {
	nw := n.cfg.Session.Network
	peerName := n.cfg.Peer
	if peerName == "" {
		switch {
		case nw.Name == wire.Regtest.Name || nw.Name == wire.Simnet.Name:
			return wire.NetAddrV2FromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), nw.DefaultPort), 0, 0), "", nil
		case len(nw.DNSSeeds) == 0:
			return target, "", fmt.Errorf("no peer configured and %s has no DNS seeds", nw.Name)
		}
		peerName = nw.DNSSeeds[rand.N(len(nw.DNSSeeds))]
	}
	a, host, err := netreach.ParsePeer(peerName, nw.DefaultPort)
	if err == nil {
		if (a.Network == wire.NetTorV3 || a.Network == wire.NetI2P) && n.cfg.Reach == nil {
			return target, "", fmt.Errorf("peer %s: %w", a, ErrNoReach)
		}
		return a, "", nil
	}
	if !errors.Is(err, netreach.ErrHostName) {
		return target, "", err
	}
	port := a.Port
	if n.cfg.ReachName != nil {
		return wire.NetAddrV2{Port: port}, host, nil
	}
	resolve := n.cfg.Resolve
	if resolve == nil {
		resolve = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	ips, err := resolve(ctx, host)
	if err != nil {
		return target, "", fmt.Errorf("resolve %s: %w", host, err)
	}
	if len(ips) == 0 {
		return target, "", fmt.Errorf("resolve %s: no addresses", host)
	}
	ip := ips[rand.N(len(ips))].Unmap()
	return wire.NetAddrV2FromAddrPort(netip.AddrPortFrom(ip, port), 0, 0), "", nil
}

// Permanent reports whether err, from a connection, means that connecting
// again cannot succeed: the peer's protocol is older than we accept, we
// connected to ourselves, the pipeline cannot be built, or the peer is on a
// network we have no way to reach (ErrNoReach). A refused,
// timed-out or dropped connection is not permanent.
func Permanent(err error) bool {
	return errors.Is(err, ErrVersionTooOld) || errors.Is(err, ErrSelfConnection) || errors.Is(err, ErrPipeline) || errors.Is(err, ErrNoReach)
}
