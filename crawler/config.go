package crawler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/btcpipe/btcpipe/internal/hostport"
	"github.com/btcpipe/btcpipe/internal/version"
	"github.com/btcpipe/btcpipe/peer"
	"github.com/btcpipe/btcpipe/pipeline"
)

// Defaults of Config's zero fields.
const (
	DefaultConcurrency      = 256
	DefaultConnectTimeout   = 5 * time.Second
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultGetAddrTimeout   = 30 * time.Second
	DefaultQuiet            = 2 * time.Second
	DefaultMaxNodes         = 200_000
	// DefaultMaxAddrsPerNode ends a session once a peer has sent this many
	// address entries. Bitcoin Core answers getaddr with at most 1,000,
	// btcd with at most 1,000 (of up to 2,500 chosen).
	DefaultMaxAddrsPerNode = 10_000
)

// Config configures a crawl. Only Session.Network and Out are required.
type Config struct {
	// Session is what our version says (network, user agent, services,
	// MinProtocol, SendAddrV2). The crawler sets GetAddr, the handshake
	// timeout, and a ping interval and timeout longer than any session.
	Session peer.Config
	// Pipeline configures each connection's stages; peer, magic, observer
	// and read hint are set per connection.
	Pipeline pipeline.Config
	// Transport is the dialer's policy (peer.TransportV1, TransportV2,
	// TransportAuto; empty: Pipeline.Transport). With auto, addresses whose
	// addr entries lack NODE_P2P_V2 are dialled with v1.
	Transport string
	// Seeds are where the crawl starts: host:port, [v6]:port, an address,
	// or a host name (resolved with Resolve), the network's default port
	// when none is given. Empty: the network's DNS seeds; regtest and
	// simnet, which have none, start from 127.0.0.1 on their default port.
	Seeds []string
	// Allow is the allowlist of prefixes that may be dialled (see
	// Allowlist.Check); nil means DefaultAllow(Session.Network).
	Allow []netip.Prefix
	// Concurrency bounds the connections open at once (default 256).
	Concurrency int
	// DialRate caps new connections per second; 0 or less: no cap.
	DialRate float64
	// ConnectTimeout bounds each TCP connect, HandshakeTimeout the version
	// handshake, GetAddrTimeout the wait for addresses after the
	// handshake; Quiet ends a session once that long has passed without an
	// addr message after the first one.
	ConnectTimeout, HandshakeTimeout, GetAddrTimeout, Quiet time.Duration
	// MaxNodes caps the unique addresses the crawl keeps (and so records
	// and dials); later ones are counted as Summary.Dropped. It bounds the
	// crawl's memory.
	MaxNodes int
	// MaxAddrsPerNode ends a session once the peer sent that many entries.
	MaxAddrsPerNode int
	// ProgressInterval is how often a progress line is logged; 0: never.
	ProgressInterval time.Duration
	// Dial opens a connection (nil: net.Dialer). Its ctx carries the
	// connect timeout. Every connection the crawler makes goes through it.
	Dial func(ctx context.Context, addr netip.AddrPort) (net.Conn, error)
	// Resolve looks up a seed host name (nil: the system resolver). It is
	// the only name resolution the crawler does.
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)
	// Out receives a record per node and the summary.
	Out Sink
	// Log receives progress lines and the crawler's own messages (nil:
	// discarded). Each session logs to a copy of it whose level is at
	// least warn unless Log is at debug or trace: per-node chatter (a
	// handshake completed, a pong) would drown the progress lines.
	Log *logrus.Entry
}

// New checks cfg and returns a crawler.
func New(cfg Config) (*Crawler, error) {
	if cfg.Session.Network == nil {
		return nil, errors.New("crawler: no network")
	}
	if cfg.Out == nil {
		return nil, errors.New("crawler: no output")
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.GetAddrTimeout <= 0 {
		cfg.GetAddrTimeout = DefaultGetAddrTimeout
	}
	if cfg.Quiet <= 0 {
		cfg.Quiet = DefaultQuiet
	}
	if cfg.MaxNodes <= 0 {
		cfg.MaxNodes = DefaultMaxNodes
	}
	if cfg.MaxAddrsPerNode <= 0 {
		cfg.MaxAddrsPerNode = DefaultMaxAddrsPerNode
	}
	if cfg.Allow == nil {
		cfg.Allow = DefaultAllow(cfg.Session.Network)
	}
	if err := cfg.Pipeline.Validate(); err != nil {
		return nil, err
	}
	for _, s := range cfg.Seeds {
		if _, _, err := hostport.Split(s, cfg.Session.Network.DefaultPort); err != nil {
			return nil, fmt.Errorf("crawler: seed: %w", err)
		}
	}
	sess := cfg.Session
	sess.GetAddr = true
	sess.HandshakeTimeout = cfg.HandshakeTimeout
	// One ping goes out after the handshake (peer.Session does that);
	// no session lives long enough for a second one or its timeout.
	sess.PingInterval = 24 * time.Hour
	sess.PingTimeout = 24 * time.Hour
	if sess.UserAgent == "" {
		sess.UserAgent = version.UserAgent()
	}
	log := cfg.Log
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = logrus.NewEntry(l)
	}
	c := &Crawler{
		cfg:     cfg,
		network: cfg.Session.Network,
		allow:   NewAllowlist(cfg.Allow),
		limit:   newLimiter(cfg.DialRate),
		log:     log,
		sessLog: quieter(log),
		seen:    map[addrKey]struct{}{},
		wake:    make(chan struct{}, 1),
		summary: NewSummary(cfg.Session.Network.Name),
	}
	pcfg := cfg.Pipeline
	pcfg.Record = nil
	c.dialer = &peer.Dialer{Session: sess, Pipeline: pcfg, Dial: cfg.Dial, Timeout: cfg.ConnectTimeout, Nonces: &c.nonces,
		Transport: cfg.Transport, KnownV1: &c.knownV1}
	return c, nil
}

// quieter returns log with its level raised to warn, unless it is at debug
// or trace already.
func quieter(log *logrus.Entry) *logrus.Entry {
	base := log.Logger
	if base.IsLevelEnabled(logrus.DebugLevel) || !base.IsLevelEnabled(logrus.InfoLevel) {
		return log
	}
	l := logrus.New()
	l.SetOutput(base.Out)
	l.SetFormatter(base.Formatter)
	l.ReplaceHooks(base.Hooks)
	l.SetLevel(logrus.WarnLevel)
	return logrus.NewEntry(l).WithFields(log.Data)
}
