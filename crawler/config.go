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
	"github.com/btcpipe/btcpipe/netreach"
	"github.com/btcpipe/btcpipe/peer"
	"github.com/btcpipe/btcpipe/pipeline"
)

// Defaults of Config's zero fields. Why these values: see the README's
// crawl section; in short, a crawl of the real network (some 20,000
// reachable nodes among 60,000–100,000 addresses announced, most of the
// rest black holes that never answer a SYN) is bound by connect timeouts:
// with 1,024 connections open at once and 300 dials a second it finishes
// in about five minutes, one connection per node.
const (
	DefaultConcurrency = 1024
	// DefaultDialRate is the cap on new connections per second.
	DefaultDialRate = 300
	// DefaultConnectTimeout is Bitcoin Core's own connect timeout
	// (DEFAULT_CONNECT_TIMEOUT, 5 s).
	DefaultConnectTimeout = 5 * time.Second
	// DefaultProxyConnectTimeout bounds a connect through Tor's SOCKS
	// port or the I2P SAM bridge: building a circuit to an onion service
	// takes seconds (Bitcoin Core waits 20 s for a SOCKS5 reply).
	DefaultProxyConnectTimeout = 20 * time.Second
	DefaultHandshakeTimeout    = 10 * time.Second
	DefaultGetAddrTimeout      = 30 * time.Second
	DefaultQuiet               = 2 * time.Second
	DefaultMaxNodes            = 200_000
	// DefaultMaxAge skips addresses last announced more than 3 days ago.
	// A listening Bitcoin Core node re-announces itself to each peer
	// about once a day (AVG_LOCAL_ADDRESS_BROADCAST_INTERVAL, 24 h mean),
	// a getaddr answer comes from a cache up to 27 h old, and relayed
	// timestamps are set back 2 h: a live node's newest entry is rarely
	// more than two days old. Bitcoin Core itself calls an address
	// "terrible" after 30 days without news; bitnodes skips addresses
	// older than a few days in the same way.
	DefaultMaxAge = 72 * time.Hour
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
	// DialRate caps new connections per second; 0: DefaultDialRate;
	// negative: no cap.
	DialRate float64
	// Reach says how Tor v3, I2P and CJDNS addresses are reached, whether
	// clearnet goes through a proxy, and OnlyNet (netreach.Config). Its
	// Direct is set by the crawler: every direct connection goes through
	// the crawler's allowlist check and then Dial. An onion or I2P
	// address is dialled only when its proxy is set; otherwise it is
	// recorded not_dialled with the reason.
	Reach netreach.Config
	// ProxyConnectTimeout bounds a connect through a proxy or the SAM
	// bridge (default 20 s).
	ProxyConnectTimeout time.Duration
	// MaxAge skips addresses last announced longer ago (default 3 days;
	// negative: no limit). They are recorded not_dialled ("stale: …")
	// and counted in Summary.Stale, unless another source announces them
	// afresh before the crawl ends. Seeds carry no timestamp and are
	// never stale.
	MaxAge time.Duration
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
	// Dial opens a direct TCP connection (nil: net.Dialer). Its ctx
	// carries the connect timeout. Every direct connection the crawler
	// makes goes through it, after the allowlist check; connections to a
	// proxy or the SAM bridge go through Reach.ProxyDial.
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
	if cfg.DialRate == 0 {
		cfg.DialRate = DefaultDialRate
	}
	if cfg.ProxyConnectTimeout <= 0 {
		cfg.ProxyConnectTimeout = DefaultProxyConnectTimeout
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultMaxAge
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
		seen:    map[addrKey]*entry{},
		wake:    make(chan struct{}, 1),
		summary: NewSummary(cfg.Session.Network.Name),
	}
	rc := cfg.Reach
	rc.Direct = c.directDial
	reach, err := netreach.New(rc)
	if err != nil {
		return nil, fmt.Errorf("crawler: %w", err)
	}
	c.reach = reach
	pcfg := cfg.Pipeline
	pcfg.Record = nil
	// The connect timeout is applied per route in dial (a proxied
	// connect is given longer).
	c.dialer = &peer.Dialer{Session: sess, Pipeline: pcfg, Reach: c.dial, Nonces: &c.nonces,
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
