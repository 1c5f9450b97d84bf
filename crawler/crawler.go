package crawler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sync/errgroup"

	"github.com/btcpipe/btcpipe/internal/hostport"
	"github.com/btcpipe/btcpipe/internal/version"
	"github.com/btcpipe/btcpipe/peer"
	"github.com/btcpipe/btcpipe/pipeline"
	"github.com/btcpipe/btcpipe/stages"
	"github.com/btcpipe/btcpipe/wire"
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

// Stats is a snapshot of a running crawl's counters.
type Stats struct {
	Discovered int // unique addresses known
	Queued     int // waiting to be dialled
	Tried      int // connection attempts begun
	Reachable  int
	Failed     int // records with a failure outcome
	NotDialled int
	InFlight   int // connection attempts under way now
	PeakFlight int // the most ever under way at once
	Done       int // attempts finished (recorded or abandoned)
}

// Crawler walks the network: see the package documentation. Make one with
// New; Run it once.
type Crawler struct {
	cfg     Config
	network *wire.Network
	allow   Allowlist
	sess    peer.Config
	limit   *limiter
	log     *logrus.Entry
	sessLog *logrus.Entry
	nonces  peer.Nonces

	// mu guards the address book and the queue.
	mu       sync.Mutex
	seen     map[addrKey]struct{}
	queue    []target
	head     int
	inflight int // targets taken by the scheduler and not yet finished
	dropped  int
	wake     chan struct{}

	tried, reachable, failed, notDialled atomic.Int64
	active, peak, done                   atomic.Int64
	abandoned, unstarted                 atomic.Int64

	// outMu serialises the sink and guards summary and outErr.
	outMu   sync.Mutex
	summary Summary
	outErr  error
	stop    context.CancelCauseFunc
}

// target is an address waiting to be dialled.
type target struct {
	addr   wire.NetAddrV2
	source string
}

// addrKey identifies an address for deduplication.
type addrKey struct {
	network wire.NetID
	ip      netip.Addr
	key     [32]byte
	port    uint16
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
	reg := cfg.Pipeline.Registry
	if reg == nil {
		reg = pipeline.DefaultRegistry
	}
	if _, err := reg.Framer(cfg.Pipeline.Framer, cfg.Pipeline.Options); err != nil {
		return nil, err
	}
	if _, err := reg.Verifier(cfg.Pipeline.Verifier, cfg.Pipeline.Options); err != nil {
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
	return &Crawler{
		cfg:     cfg,
		network: cfg.Session.Network,
		allow:   NewAllowlist(cfg.Allow),
		sess:    sess,
		limit:   newLimiter(cfg.DialRate),
		log:     log,
		sessLog: quieter(log),
		seen:    map[addrKey]struct{}{},
		wake:    make(chan struct{}, 1),
		summary: NewSummary(cfg.Session.Network.Name),
	}, nil
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

// Allowlist returns the allowlist in force.
func (c *Crawler) Allowlist() Allowlist { return c.allow }

// Stats returns the crawl's counters now.
func (c *Crawler) Stats() Stats {
	c.mu.Lock()
	discovered, queued := len(c.seen), len(c.queue)-c.head
	c.mu.Unlock()
	return Stats{
		Discovered: discovered,
		Queued:     queued,
		Tried:      int(c.tried.Load()),
		Reachable:  int(c.reachable.Load()),
		Failed:     int(c.failed.Load()),
		NotDialled: int(c.notDialled.Load()),
		InFlight:   int(c.active.Load()),
		PeakFlight: int(c.peak.Load()),
		Done:       int(c.done.Load()),
	}
}

// Run crawls until no address is left to dial or ctx ends, writes the
// summary to the sink, and returns it. It returns an error when the seeds
// yield no address or the sink fails; an interrupted crawl (ctx ended) is
// not an error: its summary says Interrupted. Every goroutine it started has
// ended when it returns.
func (c *Crawler) Run(ctx context.Context) (Summary, error) {
	parent := ctx
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	c.stop = stop
	started := time.Now()

	if err := c.seed(ctx); err != nil {
		return c.finalSummary(started, parent), err
	}

	progressDone := make(chan struct{})
	var progress sync.WaitGroup
	if c.cfg.ProgressInterval > 0 {
		progress.Add(1)
		go func() {
			defer progress.Done()
			c.progressLoop(ctx, progressDone)
		}()
	}

	var g errgroup.Group
	g.SetLimit(c.cfg.Concurrency)
	for {
		t, ok := c.next(ctx)
		if !ok {
			break
		}
		g.Go(func() error {
			defer c.release()
			c.visit(ctx, t)
			return nil
		})
	}
	_ = g.Wait() // visits return nil: their failures are records
	close(progressDone)
	progress.Wait()

	s := c.finalSummary(started, parent)
	c.outMu.Lock()
	err := c.outErr
	if err == nil {
		err = c.cfg.Out.Summary(&s)
	}
	c.outMu.Unlock()
	if err == nil {
		c.logSummary(&s)
	}
	return s, err
}

// finalSummary completes the running summary.
func (c *Crawler) finalSummary(started time.Time, parent context.Context) Summary {
	c.outMu.Lock()
	s := c.summary
	c.outMu.Unlock()
	c.mu.Lock()
	s.Discovered = len(c.seen)
	s.Pending = len(c.queue) - c.head + int(c.unstarted.Load())
	s.Dropped = c.dropped
	c.mu.Unlock()
	s.Abandoned = int(c.abandoned.Load())
	s.Started = started.UTC()
	s.Finished = time.Now().UTC()
	s.Seconds = math.Round(s.Finished.Sub(s.Started).Seconds()*1000) / 1000
	s.Interrupted = parent.Err() != nil
	return s
}

func (c *Crawler) logSummary(s *Summary) {
	fields := logrus.Fields{
		"discovered": s.Discovered, "tried": s.Tried, "records": s.Records,
		"duration":    time.Duration(s.Seconds * float64(time.Second)).Round(time.Millisecond).String(),
		"interrupted": s.Interrupted,
	}
	for _, o := range Outcomes {
		if n := s.ByOutcome[o]; n > 0 {
			fields[string(o)] = n
		}
	}
	c.log.WithFields(fields).Infof("crawl finished: %d reachable of %d tried, %d discovered",
		s.ByOutcome[Reachable], s.Tried, s.Discovered)
}

// progressLoop logs a progress line every ProgressInterval until done or
// ctx ends.
func (c *Crawler) progressLoop(ctx context.Context, done <-chan struct{}) {
	t := time.NewTicker(c.cfg.ProgressInterval)
	defer t.Stop()
	last, lastAt := int64(0), time.Now()
	for {
		select {
		case now := <-t.C:
			st := c.Stats()
			rate := float64(int64(st.Done)-last) / now.Sub(lastAt).Seconds()
			last, lastAt = int64(st.Done), now
			c.log.WithFields(logrus.Fields{
				"discovered": st.Discovered, "queued": st.Queued, "tried": st.Tried,
				"reachable": st.Reachable, "failed": st.Failed, "not_dialled": st.NotDialled,
				"in_flight": st.InFlight, "rate": math.Round(rate*10) / 10,
				"goroutines": runtime.NumGoroutine(),
			}).Infof("crawl: %d discovered, %d tried, %d reachable, %d failed, %d in flight, %.1f nodes/s",
				st.Discovered, st.Tried, st.Reachable, st.Failed, st.InFlight, rate)
		case <-done:
			return
		case <-ctx.Done():
			return
		}
	}
}

// seed learns the seed addresses.
func (c *Crawler) seed(ctx context.Context) error {
	seeds, port := c.cfg.Seeds, c.network.DefaultPort
	if len(seeds) == 0 {
		seeds = c.network.DNSSeeds
		if len(seeds) == 0 { // regtest, simnet
			seeds = []string{"127.0.0.1"}
		}
	}
	resolve := c.cfg.Resolve
	if resolve == nil {
		resolve = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	var errs []error
	for _, s := range seeds {
		host, p, err := hostport.Split(s, port)
		if err != nil {
			return fmt.Errorf("crawler: seed: %w", err)
		}
		if ip, err := netip.ParseAddr(host); err == nil {
			c.learn([]wire.NetAddrV2{wire.NetAddrV2FromAddrPort(netip.AddrPortFrom(ip, p), 0, 0)}, "seed")
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, c.cfg.ConnectTimeout+c.cfg.HandshakeTimeout)
		ips, err := resolve(rctx, host)
		cancel()
		if err != nil {
			c.log.WithError(err).WithField("seed", host).Warn("cannot resolve seed")
			errs = append(errs, fmt.Errorf("%s: %w", host, err))
			continue
		}
		list := make([]wire.NetAddrV2, len(ips))
		for i, ip := range ips {
			list[i] = wire.NetAddrV2FromAddrPort(netip.AddrPortFrom(ip, p), 0, 0)
		}
		c.learn(list, "dns:"+host)
	}
	if ctx.Err() != nil {
		return nil // interrupted: an empty, interrupted summary
	}
	c.mu.Lock()
	n := len(c.seen)
	c.mu.Unlock()
	if n == 0 {
		return fmt.Errorf("crawler: no seed address (%w)", errors.Join(errs...))
	}
	return nil
}

// learn adds the new addresses of list to the book: those that may be
// dialled to the queue, the others straight to the output as NotDialled.
// It returns how many were new.
func (c *Crawler) learn(list []wire.NetAddrV2, source string) int {
	var skipped []Record
	fresh := 0
	c.mu.Lock()
	for _, a := range list {
		a = normalise(a)
		k := addrKey{network: a.Network, ip: a.IP, key: a.Key, port: a.Port}
		if _, ok := c.seen[k]; ok {
			continue
		}
		if len(c.seen) >= c.cfg.MaxNodes {
			c.dropped++
			continue
		}
		c.seen[k] = struct{}{}
		fresh++
		if reason := c.undialable(a); reason != "" {
			skipped = append(skipped, Record{
				Type: RecordType, Addr: a.String(), Network: a.Network.String(), Source: source,
				Outcome: NotDialled, Reason: reason,
			})
			continue
		}
		c.queue = append(c.queue, target{addr: a, source: source})
	}
	c.mu.Unlock()
	if fresh > len(skipped) {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	for i := range skipped {
		c.finish(&skipped[i])
	}
	return fresh
}

// normalise turns an IPv4-mapped IPv6 entry into an IPv4 one and clears
// what does not identify the address.
func normalise(a wire.NetAddrV2) wire.NetAddrV2 {
	a.Time, a.Services = 0, 0
	switch a.Network {
	case wire.NetIPv4, wire.NetIPv6:
		a.IP = a.IP.Unmap().WithZone("")
		if a.IP.Is4() {
			a.Network = wire.NetIPv4
		}
		a.Key = [32]byte{}
	case wire.NetCJDNS:
		a.Key = [32]byte{}
	default:
		a.IP = netip.Addr{}
	}
	return a
}

// undialable returns why a must not be dialled, or "".
func (c *Crawler) undialable(a wire.NetAddrV2) string {
	switch a.Network {
	case wire.NetTorV3:
		return "tor v3: not dialled (no proxy)"
	case wire.NetI2P:
		return "i2p: not dialled"
	case wire.NetCJDNS:
		return "cjdns: not dialled"
	}
	ap, _ := a.AddrPort()
	if ok, reason := c.allow.Check(ap); !ok {
		return reason
	}
	return ""
}

// next takes the next target off the queue, waiting while the queue is
// empty but connections are under way (they may yet add to it). ok is false
// when nothing is left and nothing is under way, or ctx ended.
func (c *Crawler) next(ctx context.Context) (target, bool) {
	for {
		c.mu.Lock()
		if ctx.Err() != nil {
			c.mu.Unlock()
			return target{}, false
		}
		if c.head < len(c.queue) {
			t := c.queue[c.head]
			c.queue[c.head] = target{}
			c.head++
			if c.head >= 1024 && c.head*2 >= len(c.queue) {
				n := copy(c.queue, c.queue[c.head:])
				clear(c.queue[n:])
				c.queue, c.head = c.queue[:n], 0
			}
			c.inflight++
			c.mu.Unlock()
			return t, true
		}
		if c.inflight == 0 {
			c.mu.Unlock()
			return target{}, false
		}
		c.mu.Unlock()
		select {
		case <-c.wake:
		case <-ctx.Done():
		}
	}
}

// release marks a target taken by next as finished.
func (c *Crawler) release() {
	c.mu.Lock()
	c.inflight--
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// finish counts r and hands it to the sink.
func (c *Crawler) finish(r *Record) {
	r.Time = time.Now().UTC()
	switch {
	case r.Outcome == Reachable:
		c.reachable.Add(1)
	case r.Outcome == NotDialled:
		c.notDialled.Add(1)
	default:
		c.failed.Add(1)
	}
	if c.log.Logger.IsLevelEnabled(logrus.DebugLevel) {
		f := logrus.Fields{"peer": r.Addr, "outcome": r.Outcome, "source": r.Source}
		if r.Error != "" {
			f[logrus.ErrorKey] = r.Error
		}
		if r.Reason != "" {
			f["reason"] = r.Reason
		}
		c.log.WithFields(f).Debugf("%s: %s", r.Addr, r.Outcome)
	}
	c.outMu.Lock()
	defer c.outMu.Unlock()
	c.summary.Add(r)
	if c.outErr != nil {
		return
	}
	if err := c.cfg.Out.Record(r); err != nil {
		c.outErr = err
		c.log.WithError(err).Error("cannot write the crawl's output; stopping")
		c.stop(err)
	}
}

// Causes with which the crawler ends a session on its own terms.
var (
	errQuiet          = errors.New("quiet period after addresses")
	errGetAddrTimeout = errors.New("getaddr timeout")
	errAddrCap        = errors.New("per-node address cap reached")
)

// endedBy names a cause with which the crawler ends a session, or "".
func endedBy(cause error) string {
	switch cause {
	case errQuiet:
		return EndedQuiet
	case errGetAddrTimeout:
		return EndedGetAddrTimeout
	case errAddrCap:
		return EndedAddrCap
	}
	return ""
}

// visit dials t, runs a session and records the outcome.
func (c *Crawler) visit(ctx context.Context, t target) {
	if err := c.limit.wait(ctx); err != nil {
		c.unstarted.Add(1)
		return
	}
	ap, _ := t.addr.AddrPort()
	rec := &Record{Type: RecordType, Addr: t.addr.String(), Network: t.addr.Network.String(), Source: t.source}
	c.tried.Add(1)
	if n := c.active.Add(1); n > c.peak.Load() {
		for p := c.peak.Load(); n > p && !c.peak.CompareAndSwap(p, n); p = c.peak.Load() {
		}
	}
	defer func() {
		c.active.Add(-1)
		c.done.Add(1)
	}()

	dctx, cancel := context.WithTimeout(ctx, c.cfg.ConnectTimeout)
	begin := time.Now()
	conn, err := c.dial(dctx, ap)
	connect := time.Since(begin)
	cancel()
	if err == nil && ctx.Err() != nil {
		conn.Close()
		err = ctx.Err()
	}
	if err != nil {
		if ctx.Err() != nil {
			c.abandoned.Add(1)
			return
		}
		rec.Outcome = classifyDial(err)
		if rec.Outcome == Timeout && errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("connect: timed out after %s", c.cfg.ConnectTimeout)
		}
		rec.Error = errorText(err)
		c.finish(rec)
		return
	}
	rec.ConnectMs = ms(connect)
	c.session(ctx, conn, ap, connect, rec)
}

func (c *Crawler) dial(ctx context.Context, ap netip.AddrPort) (net.Conn, error) {
	if c.cfg.Dial != nil {
		return c.cfg.Dial(ctx, ap)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", ap.String())
}

// session runs the protocol over conn and records how it went.
func (c *Crawler) session(ctx context.Context, conn net.Conn, ap netip.AddrPort, connect time.Duration, rec *Record) {
	nodeCtx, end := context.WithCancelCause(ctx)
	defer end(nil)
	n := &node{c: c, end: end, source: rec.Addr}
	log := c.sessLog.WithField("peer", rec.Addr)
	sess := peer.NewSession(c.sess, ap, log, peer.Hooks{Handshake: n.onHandshake, Addrs: n.onAddrs}, &c.nonces)
	sess.SetConnectLatency(connect)

	pcfg := c.cfg.Pipeline
	pcfg.Options.Peer = rec.Addr
	pcfg.Options.Magic = c.network.Magic
	pcfg.Options.Hint = nil
	obs := pipeline.Observers{&n.versions, pipeline.NewLogObserver(log)}
	if extra := c.cfg.Pipeline.Options.Observer; extra != nil {
		obs = append(obs, extra) // e.g. metrics, shared by every connection
	}
	pcfg.Options.Observer = obs
	pcfg.Record = nil
	p, err := pipeline.New(conn, conn, conn, sess, pcfg)
	if err == nil {
		err = p.Run(nodeCtx)
	} else {
		conn.Close()
	}
	n.stopTimers()
	cause := context.Cause(nodeCtx)

	n.mu.Lock()
	handshook, addrs, fresh := n.handshook, n.addrs, n.fresh
	n.mu.Unlock()
	interrupted := ctx.Err() != nil
	var ended string
	switch {
	case interrupted:
		if !handshook {
			c.abandoned.Add(1)
			return
		}
		rec.Outcome, ended = Reachable, EndedInterrupted
	case endedBy(cause) != "" && handshook: // the timers start only after the handshake
		rec.Outcome, ended = Reachable, endedBy(cause)
	default:
		rec.Outcome = classifySession(err, handshook, addrs)
		if rec.Outcome == Reachable {
			ended = EndedPeerClosed
		} else if err != nil {
			rec.Error = errorText(err)
		}
	}
	if n.versions.seen.Load() {
		info := sess.Info()
		v := info.Version
		rec.Handshake = &Handshake{
			Protocol:      v.Protocol,
			Services:      v.Services.Names(),
			ServiceBits:   uint64(v.Services),
			UserAgent:     v.UserAgent,
			StartHeight:   v.StartHeight,
			Relay:         v.Relay,
			AddrsReturned: addrs,
			AddrsNew:      fresh,
		}
		if handshook {
			rec.Handshake.HandshakeMs = ms(info.HandshakeLatency)
		}
		if rec.Outcome == Reachable {
			rec.Handshake.Ended = ended
		}
	}
	c.finish(rec)
}

// node is the state of one session, shared by its hooks and timers.
type node struct {
	c        *Crawler
	end      context.CancelCauseFunc
	source   string
	versions versionSeen

	mu        sync.Mutex
	handshook bool
	addrs     int
	fresh     int
	stopped   bool
	quiet     *time.Timer
	deadline  *time.Timer
}

func (n *node) onHandshake(peer.Info) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.handshook = true
	if !n.stopped {
		n.deadline = time.AfterFunc(n.c.cfg.GetAddrTimeout, func() { n.end(errGetAddrTimeout) })
	}
}

// onAddrs learns list (valid only during the call) and (re)starts the
// quiet timer.
func (n *node) onAddrs(list []wire.NetAddrV2) {
	fresh := n.c.learn(list, n.source)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.addrs += len(list)
	n.fresh += fresh
	switch {
	case n.stopped, !n.handshook: // the handshake timeout bounds what comes before it
	case n.addrs >= n.c.cfg.MaxAddrsPerNode:
		n.end(errAddrCap)
	case n.quiet == nil:
		n.quiet = time.AfterFunc(n.c.cfg.Quiet, func() { n.end(errQuiet) })
	default:
		n.quiet.Reset(n.c.cfg.Quiet)
	}
}

func (n *node) stopTimers() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.stopped = true
	for _, t := range []*time.Timer{n.quiet, n.deadline} {
		if t != nil {
			t.Stop()
		}
	}
}

// versionSeen notes that a version message arrived (sess.Info().Version is
// then filled even when the handshake fails).
type versionSeen struct {
	stages.NopObserver
	seen atomic.Bool
}

func (v *versionSeen) Decoded(m wire.Message) {
	if _, ok := m.(*wire.Version); ok {
		v.seen.Store(true)
	}
}
