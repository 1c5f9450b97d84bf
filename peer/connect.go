package peer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/btcpipe/btcpipe/pipeline"
	"github.com/btcpipe/btcpipe/stages"
	"github.com/btcpipe/btcpipe/wire"
)

// ErrPipeline means the pipeline of a connection could not be built (an
// unknown or incompatible stage name): no connection can succeed with that
// configuration. It reaches the caller wrapped with the peer and the cause.
var ErrPipeline = errors.New("cannot build the pipeline")

// DialError is a failure to open the connection (TCP, or through a proxy
// or the I2P bridge): no pipeline ran. Addr is the IP address and port, the
// zero value for Tor and I2P peers; Peer names the peer on every network
// (host:port, ….onion:port, ….b32.i2p:0).
type DialError struct {
	Addr netip.AddrPort
	Peer string
	Err  error
}

func (e *DialError) Error() string {
	name := e.Peer
	if name == "" {
		name = e.Addr.String()
	}
	return fmt.Sprintf("peer %s: connect: %v", name, e.Err)
}
func (e *DialError) Unwrap() error { return e.Err }

// Dialer opens connections: it dials, runs a Session over a pipeline built
// from Pipeline, and reports the outcome. The node and the crawler both
// open every connection through Dialer.Connect. A Dialer is safe for
// concurrent use once configured; do not change its fields while Connect
// runs.
type Dialer struct {
	// Session is what our version says and how patient the session is.
	Session Config
	// Pipeline configures each connection's stages. Connect fills in, per
	// connection, Options.Peer, Options.Magic (from Session.Network), a
	// fresh Options.Hint, and Options.Observer: a log observer, the
	// observer Connect needs itself, then Pipeline.Options.Observer if set
	// (metrics, counters: shared by every connection).
	Pipeline pipeline.Config
	// Dial opens a TCP connection (nil: net.Dialer). Its ctx carries the
	// connect timeout. It is used for IP addresses when Reach is nil.
	Dial func(ctx context.Context, addr netip.AddrPort) (net.Conn, error)
	// Reach, when set, opens every connection, on any BIP155 network: a
	// netreach.Dialer's Dial, which routes Tor v3 to a SOCKS5 proxy, I2P
	// to a SAM bridge and IP addresses to its own direct dial (or a
	// proxy). Its ctx carries the connect timeout. Nil: only IPv4, IPv6
	// and CJDNS peers can be reached, through Dial.
	Reach func(ctx context.Context, a wire.NetAddrV2) (net.Conn, error)
	// Timeout bounds each TCP connect; 0: no bound but ctx's.
	Timeout time.Duration
	// Nonces, shared by every session of a process, detects connections to
	// ourselves; nil: a Dialer of its own.
	Nonces *Nonces
}

// ConnectHooks let the caller of Connect follow one connection. Each may
// be nil; they are called from Connect's goroutine or the session's and
// must not block for long.
type ConnectHooks struct {
	Hooks
	// Connected is called once the TCP connection is open, with the time
	// the connect took.
	Connected func(latency time.Duration)
	// Started is called with the pipeline just before it runs.
	Started func(p *pipeline.Pipeline)
}

// Outcome is how one connection went.
type Outcome struct {
	// Addr is the peer's IP address and port (zero for Tor and I2P);
	// Peer the peer on any network.
	Addr netip.AddrPort
	Peer wire.NetAddrV2
	// Connected: the TCP connection opened (and ConnectLatency is how long
	// that took). When false, Err is a *DialError or ctx's error.
	Connected      bool
	ConnectLatency time.Duration
	// VersionSeen: the peer's version message arrived, so Info.Version is
	// filled even when the handshake then failed.
	VersionSeen bool
	// Handshook: the version handshake completed; Info.HandshakeLatency
	// is then set.
	Handshook bool
	Info      Info
	// BytesIn and BytesOut count the bytes read from and written to the
	// connection (TCP payload, headers included).
	BytesIn, BytesOut int64
	// Err is why the connection ended: a *DialError, ctx's error, an error
	// wrapping ErrPipeline, or the pipeline's (a *stages.Error for a
	// stage's failure). Nil only when the pipeline ended normally.
	Err error
}

// Connect dials addr, runs a Session over the pipeline until it ends (a
// stage fails, the peer goes away, or ctx ends) and reports the outcome.
// log (nil: discarded) is the connection's logger, usually carrying a peer
// field. The connection is closed when Connect returns.
func (d *Dialer) Connect(ctx context.Context, addr netip.AddrPort, log *logrus.Entry, hooks ConnectHooks) Outcome {
	return d.ConnectTo(ctx, wire.NetAddrV2FromAddrPort(addr, 0, 0), log, hooks)
}

// ErrNoReach: a Tor v3 or I2P peer was to be connected by a Dialer without
// Reach.
var ErrNoReach = errors.New("no way to reach this network (no proxy configured)")

// ConnectTo is Connect for a peer on any BIP155 network: a Tor v3 or I2P
// peer goes through Reach (a DialError wrapping ErrNoReach without it). Our
// version's addr_recv carries the peer's address only when it is an IP
// address; for the others it is zero, as Bitcoin Core sends.
func (d *Dialer) ConnectTo(ctx context.Context, peer wire.NetAddrV2, log *logrus.Entry, hooks ConnectHooks) Outcome {
	return d.connect(ctx, peer, peer.String(), log, hooks)
}

// connect is ConnectTo with the peer's name for logs and errors (a host
// name sent to a proxy has no NetAddrV2 of its own).
func (d *Dialer) connect(ctx context.Context, peer wire.NetAddrV2, name string, log *logrus.Entry, hooks ConnectHooks) Outcome {
	addr, _ := peer.AddrPort()
	out := Outcome{Addr: addr, Peer: peer}
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = logrus.NewEntry(l)
	}
	dctx, cancel := ctx, context.CancelFunc(func() {})
	if d.Timeout > 0 {
		dctx, cancel = context.WithTimeout(ctx, d.Timeout)
	}
	begin := time.Now()
	conn, err := d.dial(dctx, peer)
	latency := time.Since(begin)
	cancel()
	if err == nil && ctx.Err() != nil { // connected just as ctx ended
		conn.Close()
		err = ctx.Err()
	}
	if err != nil {
		if ctx.Err() != nil {
			out.Err = ctx.Err()
		} else {
			out.Err = &DialError{Addr: addr, Peer: name, Err: err}
		}
		return out
	}
	out.Connected, out.ConnectLatency = true, latency
	if hooks.Connected != nil {
		hooks.Connected(latency)
	}

	cc := &countingConn{Conn: conn}
	var handshook atomic.Bool
	sh := hooks.Hooks
	sh.Handshake = func(info Info) {
		handshook.Store(true)
		if hooks.Handshake != nil {
			hooks.Handshake(info)
		}
	}
	sess := NewSession(d.Session, addr, log, sh, d.Nonces)
	sess.SetConnectLatency(latency)

	var versions versionSeen
	pcfg := d.Pipeline
	pcfg.Options.Peer = name
	pcfg.Options.Magic = d.Session.Network.Magic
	pcfg.Options.Hint = nil // one per connection (pipeline.New makes it)
	obs := pipeline.Observers{&versions, pipeline.NewLogObserver(log)}
	if extra := d.Pipeline.Options.Observer; extra != nil {
		obs = append(obs, extra)
	}
	pcfg.Options.Observer = obs
	p, err := pipeline.New(cc, cc, cc, sess, pcfg)
	if err != nil {
		conn.Close()
		out.Err = fmt.Errorf("peer %s: %w: %w", name, ErrPipeline, err)
		return out
	}
	if hooks.Started != nil {
		hooks.Started(p)
	}
	out.Err = p.Run(ctx)
	out.Handshook = handshook.Load()
	out.VersionSeen = versions.seen.Load()
	out.Info = sess.Info()
	out.BytesIn, out.BytesOut = cc.in.Load(), cc.out.Load()
	return out
}

func (d *Dialer) dial(ctx context.Context, peer wire.NetAddrV2) (net.Conn, error) {
	if d.Reach != nil {
		return d.Reach(ctx, peer)
	}
	addr, ok := peer.AddrPort()
	if !ok {
		return nil, ErrNoReach
	}
	if d.Dial != nil {
		return d.Dial(ctx, addr)
	}
	var nd net.Dialer
	return nd.DialContext(ctx, "tcp", addr.String())
}

// countingConn counts the bytes read and written; SetWriteDeadline and the
// rest pass through to the connection.
type countingConn struct {
	net.Conn
	in, out atomic.Int64
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.in.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.out.Add(int64(n))
	return n, err
}

// versionSeen notes that a version message arrived (Session.Info().Version
// is then filled even when the handshake fails).
type versionSeen struct {
	stages.NopObserver
	seen atomic.Bool
}

func (v *versionSeen) Decoded(m wire.Message) {
	if _, ok := m.(*wire.Version); ok {
		v.seen.Store(true)
	}
}
