package peer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
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
	// ourselves; nil: each session has its own, which detects only a
	// connection that echoes the session's own version.
	Nonces *Nonces
	// Transport is the policy: TransportV1, TransportV2 or TransportAuto
	// (see Connect); empty: Pipeline.Transport as it is.
	Transport string
	// KnownV1, shared by every Dialer of a process, holds the addresses
	// found to speak v1 only, which an auto Dialer dials with v1 at once;
	// nil: nothing is remembered.
	KnownV1 *AddrSet
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
	// NoV2 says that addr does not advertise NODE_P2P_V2 (an addr entry
	// without the bit): an auto Dialer dials it with v1 at once.
	NoV2 bool
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
	// Transport is the transport of the connection ("v1", "v2"), and
	// SessionID BIP324's session id in hex (empty for v1 or before the
	// v2 handshake completed). FellBack: an auto Dialer tried v2 first and
	// reconnected with v1.
	Transport string
	SessionID string
	FellBack  bool
	// Err is why the connection ended: a *DialError, ctx's error, an error
	// wrapping ErrPipeline, or the pipeline's (a *stages.Error for a
	// stage's failure). Nil only when the pipeline ended normally.
	Err error
}

// ErrNoReach: a Tor v3 or I2P peer was to be connected by a Dialer without
// Reach.
var ErrNoReach = errors.New("no way to reach this network (no proxy configured)")

// connect is one connection to peer, named name in logs and errors (a host
// name sent to a proxy has no NetAddrV2 of its own), with pipeline
// transport t (see connectNamed for the policy that picks it).
func (d *Dialer) connect(ctx context.Context, peer wire.NetAddrV2, name string, log *logrus.Entry, hooks ConnectHooks, t string) Outcome {
	addr, _ := peer.AddrPort()
	out := Outcome{Addr: addr, Peer: peer, Transport: or(t, pipeline.DefaultTransportName)}
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
	switch d.Transport {
	case "":
	case TransportAuto:
		pcfg = ConfigFor(pcfg, t)
	default:
		pcfg.Transport = t // an override of another wire format is an error (ErrPipeline)
	}
	pcfg.Options.Peer = name
	pcfg.Options.Magic = d.Session.Network.Magic
	pcfg.Options.Hint = nil // one per connection (pipeline.New makes it)
	obs := pipeline.Observers{&versions, pipeline.NewLogObserver(log)}
	if extra := d.Pipeline.Options.Observer; extra != nil {
		if to, ok := extra.(stages.TransportObserver); ok {
			extra = to.ForTransport(out.Transport)
		}
		obs = append(obs, extra)
	}
	pcfg.Options.Observer = obs
	// When we end the connection (ctx ended: the crawl is done with the
	// node, or the process stops), the pipeline half-closes it (FIN) and
	// the rest the peer sent is drained before the close (see halfCloser);
	// when a stage failed it is closed at once.
	hc := &halfCloser{c: cc, ours: ctx}
	p, err := pipeline.New(cc, cc, hc, sess, pcfg)
	if err != nil {
		conn.Close()
		out.Err = fmt.Errorf("peer %s: %w: %w", name, ErrPipeline, err)
		return out
	}
	sess.SetTransport(func() (string, string) {
		name, link := p.Transport()
		return name, link.SessionID
	})
	if hooks.Started != nil {
		hooks.Started(p)
	}
	out.Err = p.Run(pipeline.WithHandshakeTimeout(ctx, d.Session.HandshakeTimeout))
	hc.shutdown()
	_, link := p.Transport()
	out.SessionID = link.SessionID
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
// drainTime bounds how long a connection is read after our half-close,
// waiting for the peer to close its side.
const drainTime = 250 * time.Millisecond

// halfCloser is the pipeline's closer. When the connection ends because
// ours ended (we are done with the peer), it ends our side of a TCP
// connection (FIN) and bounds the reads that follow, so that a reader
// blocked in Read returns, without aborting the connection: closing a
// socket whose receive buffer still holds data makes the kernel send RST,
// which Bitcoin Core logs as "socket recv error … Connection reset by peer".
// When a stage failed (a misbehaving peer, a broken connection) it closes
// at once: nothing more is read from such a peer. Connections that cannot
// half-close (through a proxy, pipes in tests) are closed outright.
type halfCloser struct {
	c       *countingConn
	ours    context.Context
	mu      sync.Mutex
	halfway bool // half-closed, to be drained by shutdown
}

func (h *halfCloser) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ours.Err() != nil {
		if cw, ok := h.c.Conn.(interface{ CloseWrite() error }); ok {
			if cw.CloseWrite() == nil && h.c.Conn.SetReadDeadline(time.Now().Add(drainTime)) == nil {
				h.halfway = true
				return nil
			}
		}
	}
	return h.c.Conn.Close()
}

// shutdown ends a connection whose pipeline has stopped: a half-closed one
// is read, and what the peer still sends discarded, until the peer closes
// its side (it answers our FIN) or drainTime passes; then it is closed.
func (h *halfCloser) shutdown() {
	h.mu.Lock()
	halfway := h.halfway
	h.mu.Unlock()
	if halfway {
		_, _ = io.Copy(io.Discard, h.c.Conn)
	}
	h.c.Conn.Close()
}

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

func discardLog() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
