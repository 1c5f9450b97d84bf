package crawler

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sync/errgroup"

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
	// dialer opens every connection (peer.Dialer.Connect).
	dialer *peer.Dialer

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
