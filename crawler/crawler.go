package crawler

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sync/errgroup"

	"github.com/btcpipe/btcpipe/netreach"
	"github.com/btcpipe/btcpipe/peer"
	"github.com/btcpipe/btcpipe/wire"
)

// Crawler walks the network: see the package documentation. Make one with
// New; Run it once.
type Crawler struct {
	cfg     Config
	network *wire.Network
	allow   Allowlist
	limit   *limiter
	log     *logrus.Entry
	sessLog *logrus.Entry
	nonces  peer.Nonces
	knownV1 peer.AddrSet // addresses that fell back to v1
	// dialer opens every connection (peer.Dialer.ConnectTo) through
	// reach, whose direct dials go through directDial.
	dialer *peer.Dialer
	reach  *netreach.Dialer
	visits atomic.Uint64 // numbers visits, as sources of addresses

	// mu guards the address book and the queue.
	mu       sync.Mutex
	seen     map[addrKey]*entry
	queue    []target
	head     int
	inflight int // targets taken by the scheduler and not yet finished
	dropped  int
	stale    int // entries in stateStale
	// staleSource is who first announced each stale entry.
	staleSource map[addrKey]string
	wake        chan struct{}

	tried, reachable, failed, notDialled atomic.Int64
	active, peak, done                   atomic.Int64
	abandoned, unstarted                 atomic.Int64

	// outMu serialises the sink and guards summary and outErr.
	outMu   sync.Mutex
	summary Summary
	outErr  error
	stop    context.CancelCauseFunc
}

// Allowlist returns the allowlist in force.
func (c *Crawler) Allowlist() Allowlist { return c.allow }

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
	defer c.reach.Close()
	if c.staleSource == nil {
		c.staleSource = map[addrKey]string{}
	}

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
	c.recordStale()

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

// dial opens a connection to a through its route (netreach), with the
// connect timeout of that route: ConnectTimeout direct, ProxyConnectTimeout
// through a proxy or the SAM bridge.
func (c *Crawler) dial(ctx context.Context, a wire.NetAddrV2) (net.Conn, error) {
	via, err := c.reach.Route(a)
	if err != nil {
		return nil, err
	}
	timeout := c.cfg.ConnectTimeout
	if via != netreach.ViaDirect {
		timeout = c.cfg.ProxyConnectTimeout
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return c.reach.Dial(dctx, a)
}

// errNotAllowed: a direct dial outside the allowlist was attempted (a bug:
// learn never queues such an address).
var errNotAllowed = errors.New("crawler: refusing a direct dial outside the allowlist")

// directDial is netreach's Direct: every direct connection the crawler
// makes. It checks the allowlist once more (CJDNS addresses, which lie in
// fc00::/8, are governed by Reach.CJDNSReachable instead) and dials through
// Config.Dial.
func (c *Crawler) directDial(ctx context.Context, ap netip.AddrPort) (net.Conn, error) {
	if !(c.cfg.Reach.CJDNSReachable && netreach.IsCJDNS(ap.Addr())) {
		if ok, reason := c.allow.Check(ap); !ok {
			return nil, fmt.Errorf("%w: %v: %s", errNotAllowed, ap, reason)
		}
	}
	if c.cfg.Dial != nil {
		return c.cfg.Dial(ctx, ap)
	}
	var nd net.Dialer
	return nd.DialContext(ctx, "tcp", ap.String())
}
