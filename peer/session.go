package peer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/btcpipe/btcpipe/internal/logsafe"
	"github.com/btcpipe/btcpipe/internal/version"
	"github.com/btcpipe/btcpipe/pipeline"
	"github.com/btcpipe/btcpipe/stages"
	"github.com/btcpipe/btcpipe/wire"
)

// Errors that end a session. They reach the caller wrapped in a
// *stages.Error naming the peer and the stage.
var (
	ErrHandshakeTimeout = errors.New("handshake timed out")
	ErrPingTimeout      = errors.New("no pong within the ping timeout")
	ErrDuplicateVersion = errors.New("second version message")
	ErrVersionTooOld    = errors.New("protocol version too old")
	ErrSelfConnection   = errors.New("connected to ourselves")
)

// Config is what a session says about us and how patient it is.
type Config struct {
	Network     *wire.Network
	UserAgent   string           // sent as is, e.g. "/btcpipe:0.1.0/"
	Services    wire.ServiceFlag // 0: we serve nothing
	StartHeight int32            // 0: we have no blocks
	Relay       bool             // BIP37 relay flag; false: no transaction invs
	// SendAddrV2 asks for addrv2 (BIP155) instead of addr.
	SendAddrV2 bool
	// MinProtocol is the oldest peer protocol version accepted.
	MinProtocol int32
	// GetAddr sends getaddr after the handshake.
	GetAddr          bool
	HandshakeTimeout time.Duration
	PingInterval     time.Duration
	PingTimeout      time.Duration
}

// DefaultConfig returns the defaults for network n.
func DefaultConfig(n *wire.Network) Config {
	return Config{
		Network:          n,
		UserAgent:        version.UserAgent(),
		SendAddrV2:       true,
		MinProtocol:      70001,
		GetAddr:          true,
		HandshakeTimeout: 30 * time.Second,
		PingInterval:     2 * time.Minute,
		PingTimeout:      20 * time.Minute,
	}
}

// Info is what we learned about a peer in the handshake.
type Info struct {
	Addr             netip.AddrPort
	Version          wire.Version // the peer's version message
	ConnectLatency   time.Duration
	HandshakeLatency time.Duration // from our version to the completed handshake
	// Transport is the connection's ("v1", "v2"; empty when the session
	// was not told), SessionID BIP324's session id in hex.
	Transport, SessionID string
}

// Hooks let the owner of a session follow it. Each may be nil. They are
// called from the session's goroutines and must not block for long.
type Hooks struct {
	// Handshake is called once, when the handshake completes.
	Handshake func(Info)
	// Addrs is called for every addr and addrv2 message (entries of addr
	// are converted); list is valid only during the call.
	Addrs func(list []wire.NetAddrV2)
	// Pong is called with the round trip of each of our pings answered.
	Pong func(rtt time.Duration)
}

// Session is the protocol of one connection: a stages.Handler.
type Session struct {
	cfg    Config
	addr   netip.AddrPort
	log    *logrus.Entry
	hooks  Hooks
	nonces *Nonces
	nonce  uint64

	connectLatency time.Duration
	transport      func() (name, sessionID string)
	versionSent    chan struct{} // closed once our version is queued
	handshakeDone  chan struct{}
	pongs          chan uint64 // nonces of pongs, to the ping loop

	mu         sync.Mutex
	started    time.Time
	gotVersion bool
	gotVerack  bool
	sentVerack bool
	done       bool
	info       Info
	v2scratch  []wire.NetAddrV2

	// awaiting and pingNonce: the nonce of our outstanding ping, so that
	// Handle passes on only the pong that answers it (see Handle).
	awaiting  bool
	pingNonce uint64
}

// NewSession returns a session with the peer at addr. nonces, shared by all
// of a process's sessions, detects connections to ourselves; it may be nil.
func NewSession(cfg Config, addr netip.AddrPort, log *logrus.Entry, hooks Hooks, nonces *Nonces) *Session {
	if nonces == nil {
		nonces = new(Nonces)
	}
	return &Session{
		cfg: cfg, addr: addr, log: log, hooks: hooks, nonces: nonces,
		versionSent:   make(chan struct{}),
		handshakeDone: make(chan struct{}),
		pongs:         make(chan uint64, 1),
	}
}

// SetTransport gives the session a way to learn the connection's transport
// and session id (the pipeline's, once its handshake is done), for Info and
// the handshake log line.
func (s *Session) SetTransport(f func() (name, sessionID string)) { s.transport = f }

// SetConnectLatency records how long the TCP connect took, for Info.
func (s *Session) SetConnectLatency(d time.Duration) { s.connectLatency = d }

// HandshakeDone is closed when the handshake completes.
func (s *Session) HandshakeDone() <-chan struct{} { return s.handshakeDone }

// Info returns what the handshake learned (zero before it completes).
func (s *Session) Info() Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.info
}

// Wants lists the commands a session handles (stages.Wanter): the framer
// skips every other one (block, tx, inv, …) as its bytes arrive, so a peer
// streaming what we do not read costs no memory.
func (s *Session) Wants() []string {
	return []string{wire.CmdVersion, wire.CmdVerack, wire.CmdPing, wire.CmdPong, wire.CmdAddr, wire.CmdAddrV2}
}

// Start sends our version, waits for the handshake (up to the handshake
// timeout), sends getaddr, then pings every PingInterval and ends the
// session when a ping goes unanswered for PingTimeout.
func (s *Session) Start(ctx context.Context, send stages.Sender) error {
	s.nonce = s.nonces.New()
	defer s.nonces.Forget(s.nonce)
	s.mu.Lock()
	s.started = time.Now()
	s.mu.Unlock()
	ver := &wire.Version{
		Protocol:    wire.ProtocolVersion,
		Services:    s.cfg.Services,
		Timestamp:   time.Now().Unix(),
		AddrRecv:    wire.NetAddr{Addr: s.addr},
		AddrFrom:    wire.NetAddr{Services: s.cfg.Services, Addr: netip.AddrPortFrom(netip.IPv6Unspecified(), 0)},
		Nonce:       s.nonce,
		UserAgent:   s.cfg.UserAgent,
		StartHeight: s.cfg.StartHeight,
		Relay:       s.cfg.Relay,
	}
	if err := send(ctx, ver); err != nil {
		return err
	}
	close(s.versionSent)

	timeout := time.NewTimer(s.cfg.HandshakeTimeout)
	defer timeout.Stop()
	select {
	case <-s.handshakeDone:
	case <-timeout.C:
		select {
		case <-s.handshakeDone: // completed just as the deadline passed
		default:
			return &stages.Error{Command: wire.CmdVersion, Err: fmt.Errorf("%w after %s", ErrHandshakeTimeout, s.cfg.HandshakeTimeout)}
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	if s.cfg.GetAddr {
		if err := send(ctx, &wire.GetAddr{}); err != nil {
			return err
		}
	}
	return s.pingLoop(ctx, send)
}

// pingLoop pings at once, then every PingInterval while no ping is
// outstanding, as Bitcoin Core does.
func (s *Session) pingLoop(ctx context.Context, send stages.Sender) error {
	ticker := time.NewTicker(s.cfg.PingInterval)
	defer ticker.Stop()
	deadline := time.NewTimer(s.cfg.PingTimeout)
	deadline.Stop()
	defer deadline.Stop()
	// The outstanding ping's nonce lives in the session (await, awaits),
	// where Handle reads it to pass on only the pong that answers it.
	var sentAt time.Time
	ping := func() error {
		nonce := rand.Uint64()
		sentAt = time.Now()
		s.await(true, nonce)
		deadline.Reset(s.cfg.PingTimeout)
		return send(ctx, &wire.Ping{Nonce: nonce, HasNonce: true})
	}
	if err := ping(); err != nil {
		return err
	}
	for {
		select {
		case <-ticker.C:
			if !s.pingOutstanding() {
				if err := ping(); err != nil {
					return err
				}
			}
		case <-s.pongs: // Handle passes on only the pong answering our ping
			s.await(false, 0)
			deadline.Stop()
			rtt := time.Since(sentAt)
			s.log.WithField("rtt", rtt.Round(time.Microsecond).String()).Infof("pong: round trip %s", rtt.Round(time.Microsecond))
			if s.hooks.Pong != nil {
				s.hooks.Pong(rtt)
			}
		case <-deadline.C:
			return &stages.Error{Command: wire.CmdPing, Err: fmt.Errorf("%w (%s)", ErrPingTimeout, s.cfg.PingTimeout)}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Handle drives the handshake and answers the peer. Messages we do not use
// are ignored, and so is anything but the handshake before it completes.
func (s *Session) Handle(ctx context.Context, m wire.Message, send stages.Sender) error {
	switch m := m.(type) {
	case *wire.Version:
		return s.onVersion(ctx, m, send)
	case *wire.Verack:
		s.mu.Lock()
		s.gotVerack = true
		s.mu.Unlock()
		s.checkDone()
		return nil
	case *wire.Ping:
		if !s.verackSent() || !m.HasNonce {
			return nil // before the handshake, or a pre-BIP31 ping that wants no pong
		}
		return send(ctx, &wire.Pong{Nonce: m.Nonce})
	case *wire.Pong:
		// Only the pong answering our outstanding ping goes to the ping
		// loop: others are dropped here, so that a wrong or unsolicited
		// one cannot take the one-message queue and push the right one
		// out (which would end the session with ErrPingTimeout).
		if !s.awaits(m.Nonce) {
			s.log.WithField("command", wire.CmdPong).Debugf("pong with nonce %016x does not answer our ping; ignored", m.Nonce)
			return nil
		}
		select {
		case s.pongs <- m.Nonce:
		default: // the same answer twice: the first is already queued
		}
	case *wire.Addr:
		s.mu.Lock()
		if !s.done { // nothing but the handshake counts before it completes
			s.mu.Unlock()
			return nil
		}
		list := s.v2scratch[:0]
		for _, a := range m.List {
			// As Bitcoin Core reads an addr entry: OnionCat, its internal
			// prefix and the unspecified address are not addresses.
			if e := wire.NetAddrV2FromAddrPort(a.Addr, a.Services, a.Time); e.Valid() {
				list = append(list, e)
			}
		}
		s.v2scratch = list
		s.mu.Unlock()
		s.onAddrs(list)
	case *wire.AddrV2:
		s.mu.Lock()
		done := s.done
		s.mu.Unlock()
		if done {
			s.onAddrs(m.List)
		}
	}
	return nil
}

// await records whether a ping is outstanding, and its nonce.
func (s *Session) await(outstanding bool, nonce uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.awaiting, s.pingNonce = outstanding, nonce
}

// pingOutstanding reports whether a ping awaits its pong.
func (s *Session) pingOutstanding() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.awaiting
}

// awaits reports whether nonce is that of our outstanding ping.
func (s *Session) awaits(nonce uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.awaiting && s.pingNonce == nonce
}

func (s *Session) verackSent() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sentVerack
}

func (s *Session) onAddrs(list []wire.NetAddrV2) {
	if s.hooks.Addrs != nil {
		s.hooks.Addrs(list)
	}
}

func (s *Session) onVersion(ctx context.Context, v *wire.Version, send stages.Sender) error {
	// The peer's version may be handled before Start has queued ours (it
	// was waiting in the socket): our replies must follow our version, and
	// our nonce must be known to detect a connection to ourselves.
	select {
	case <-s.versionSent:
	case <-ctx.Done():
		return ctx.Err()
	}
	s.mu.Lock()
	if s.gotVersion {
		s.mu.Unlock()
		return ErrDuplicateVersion
	}
	s.gotVersion = true
	s.info.Version = *v
	s.mu.Unlock()
	if v.Protocol < s.cfg.MinProtocol {
		return fmt.Errorf("%w: peer speaks %d, we need %d", ErrVersionTooOld, v.Protocol, s.cfg.MinProtocol)
	}
	if s.nonces.Has(v.Nonce) {
		return fmt.Errorf("%w (nonce %016x)", ErrSelfConnection, v.Nonce)
	}
	if v.Protocol >= 70016 { // BIP339 and BIP155: after their version, before our verack
		if err := send(ctx, &wire.WTxIDRelay{}); err != nil {
			return err
		}
		if s.cfg.SendAddrV2 {
			if err := send(ctx, &wire.SendAddrV2{}); err != nil {
				return err
			}
		}
	}
	if err := send(ctx, &wire.Verack{}); err != nil {
		return err
	}
	s.mu.Lock()
	s.sentVerack = true
	s.mu.Unlock()
	s.checkDone()
	return nil
}

func (s *Session) checkDone() {
	s.mu.Lock()
	if s.done || !s.gotVersion || !s.gotVerack || !s.sentVerack {
		s.mu.Unlock()
		return
	}
	s.done = true
	s.info.Addr = s.addr
	s.info.ConnectLatency = s.connectLatency
	s.info.HandshakeLatency = time.Since(s.started)
	if s.transport != nil {
		s.info.Transport, s.info.SessionID = s.transport()
	}
	info := s.info
	s.mu.Unlock()
	v := &info.Version
	if info.SessionID != "" {
		s.log.WithFields(logrus.Fields{"transport": info.Transport, "session_id": info.SessionID}).
			Debugf("%s session id %s (compare with getpeerinfo's session_id)", info.Transport, info.SessionID)
	}
	s.log.WithFields(logrus.Fields{
		"transport":    info.Transport,
		"user_agent":   v.UserAgent,
		"protocol":     v.Protocol,
		"services":     v.Services.String(),
		"start_height": v.StartHeight,
		"relay":        v.Relay,
		"handshake":    info.HandshakeLatency.Round(time.Microsecond).String(),
	}).Infof("handshake complete (%s): %s, protocol %d, services %s, height %d", or(info.Transport, pipeline.TransportV1), logsafe.Escape(v.UserAgent), v.Protocol, v.Services, v.StartHeight)
	if s.hooks.Handshake != nil {
		s.hooks.Handshake(info)
	}
	close(s.handshakeDone)
}
