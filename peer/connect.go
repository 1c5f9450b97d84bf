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

// DialError is a failure to open the TCP connection: no pipeline ran.
type DialError struct {
	Addr netip.AddrPort
	Err  error
}

func (e *DialError) Error() string { return fmt.Sprintf("peer %s: connect: %v", e.Addr, e.Err) }
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
	// connect timeout.
	Dial func(ctx context.Context, addr netip.AddrPort) (net.Conn, error)
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
	Addr netip.AddrPort
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

// connect is one connection with transport t (see Connect).
func (d *Dialer) connect(ctx context.Context, addr netip.AddrPort, log *logrus.Entry, hooks ConnectHooks, t string) Outcome {
	out := Outcome{Addr: addr, Transport: or(t, pipeline.DefaultTransportName)}
	dctx, cancel := ctx, context.CancelFunc(func() {})
	if d.Timeout > 0 {
		dctx, cancel = context.WithTimeout(ctx, d.Timeout)
	}
	begin := time.Now()
	conn, err := d.dial(dctx, addr)
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
			out.Err = &DialError{Addr: addr, Err: err}
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
	pcfg.Options.Peer = addr.String()
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
	p, err := pipeline.New(cc, cc, cc, sess, pcfg)
	if err != nil {
		conn.Close()
		out.Err = fmt.Errorf("peer %s: %w: %w", addr, ErrPipeline, err)
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
	_, link := p.Transport()
	out.SessionID = link.SessionID
	out.Handshook = handshook.Load()
	out.VersionSeen = versions.seen.Load()
	out.Info = sess.Info()
	out.BytesIn, out.BytesOut = cc.in.Load(), cc.out.Load()
	return out
}

func (d *Dialer) dial(ctx context.Context, addr netip.AddrPort) (net.Conn, error) {
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
