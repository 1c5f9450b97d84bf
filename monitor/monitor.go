package monitor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/btcpipe/btcpipe/crawler"
)

// Defaults of Config's zero fields.
const (
	DefaultInterval     = 10 * time.Minute
	DefaultMaxPending   = 12
	DefaultRecheckLimit = 2000
	// BackoffMin and BackoffMax bound the wait between attempts to store a
	// snapshot while the database is unreachable.
	BackoffMin = time.Second
	BackoffMax = time.Minute
)

// CrawlFunc makes the crawler of one crawl writing to out. For a re-check,
// seeds are the addresses to re-check and the crawler must dial only them
// (crawler.Config.MaxNodes = len(seeds) does that); for a crawl, seeds is
// nil (the configured seeds).
type CrawlFunc func(out crawler.Sink, seeds []string) (*crawler.Crawler, error)

// Config configures a Monitor. Store and Crawl are required.
type Config struct {
	Store *Store
	Crawl CrawlFunc
	// Interval is from the start of one crawl to the start of the next
	// (default 10 minutes).
	Interval time.Duration
	// Recheck is how often known reachable nodes whose scores are not
	// settled are re-checked between crawls (settled ones every four
	// times that); 0: no re-checks. RecheckLimit caps one round (default
	// 2,000 nodes).
	Recheck      time.Duration
	RecheckLimit int
	// MaxPending bounds the snapshots held in memory while the database
	// is unreachable (default 12); past it the oldest is dropped, logged.
	MaxPending int
	// Snapshots, if positive, stops Run once that many are stored.
	Snapshots int
	Metrics   *Metrics // nil: none
	Log       *logrus.Entry
}

// Monitor runs crawl after crawl into a Store. Make one with New; Run it
// once.
type Monitor struct {
	cfg Config
	log *logrus.Entry

	mu        sync.Mutex
	cur       *crawler.Crawler
	curID     int64
	curStart  time.Time
	next      time.Time
	pending   []*Snapshot
	stored    int
	lastID    int64
	wake      chan struct{}
	storedSig chan struct{}
}

// New checks cfg and returns a monitor.
func New(cfg Config) (*Monitor, error) {
	if cfg.Store == nil || cfg.Crawl == nil {
		return nil, errors.New("monitor: no store or no crawl")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = DefaultMaxPending
	}
	if cfg.RecheckLimit <= 0 {
		cfg.RecheckLimit = DefaultRecheckLimit
	}
	log := cfg.Log
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = logrus.NewEntry(l)
	}
	m := &Monitor{cfg: cfg, log: log, wake: make(chan struct{}, 1), storedSig: make(chan struct{}, 1)}
	m.lastID, _ = cfg.Store.LatestID(context.Background())
	return m, nil
}

// Progress reports the crawl in flight.
func (m *Monitor) Progress() Progress {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := Progress{APIVersion: APIVersion, Vantage: m.cfg.Store.Vantage(), PendingWrites: len(m.pending), LastComplete: m.lastID,
		Snapshot: m.curID, NextCrawl: timePtr(m.next)}
	if m.cur != nil {
		st := m.cur.Stats()
		p.Running, p.Started = true, timePtr(m.curStart)
		p.Discovered, p.Queued, p.Tried, p.Reachable = st.Discovered, st.Queued, st.Tried, st.Reachable
		p.Failed, p.NotDialled, p.InFlight, p.Done = st.Failed, st.NotDialled, st.InFlight, st.Done
	}
	return p
}

// collector is the crawler's sink: it keeps every record as an Observation.
type collector struct {
	obs     []Observation
	summary crawler.Summary
}

func (c *collector) Record(r *crawler.Record) error {
	c.obs = append(c.obs, ObservationOf(r))
	return nil
}
func (c *collector) Summary(s *crawler.Summary) error { c.summary = *s; return nil }

// Run crawls every Interval until ctx ends (or Snapshots are stored),
// storing each crawl and re-checking between them. A snapshot that cannot be
// stored is kept in memory and retried with backoff. When ctx ends, the
// crawl under way is marked interrupted, and snapshots not yet stored get
// one last attempt. Run returns nil then; an error only for a crawler that
// cannot be made.
func (m *Monitor) Run(ctx context.Context) error {
	wctx, stopWriter := context.WithCancel(context.Background())
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		m.writer(wctx)
	}()
	defer func() {
		// One last attempt for what is pending, bounded.
		stopWriter()
		<-writerDone
		m.flush()
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for {
		start := time.Now()
		m.mu.Lock()
		m.next = start.Add(m.cfg.Interval)
		m.mu.Unlock()
		if err := m.crawlOnce(ctx, start); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		if m.done() {
			m.waitStored(ctx)
			return nil
		}
		m.between(ctx, start.Add(m.cfg.Interval))
		if ctx.Err() != nil {
			return nil
		}
	}
}

// done reports whether Snapshots crawls have been queued or stored.
func (m *Monitor) done() bool {
	if m.cfg.Snapshots <= 0 {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stored+len(m.pending) >= m.cfg.Snapshots
}

// waitStored waits until Snapshots are stored or ctx ends.
func (m *Monitor) waitStored(ctx context.Context) {
	for {
		m.mu.Lock()
		n := m.stored
		m.mu.Unlock()
		if n >= m.cfg.Snapshots {
			return
		}
		select {
		case <-m.storedSig:
		case <-ctx.Done():
			return
		}
	}
}

func (m *Monitor) crawlOnce(ctx context.Context, start time.Time) error {
	store := m.cfg.Store
	id, err := store.BeginSnapshot(ctx, start)
	if err != nil && ctx.Err() == nil {
		m.cfg.Metrics.dbError()
		m.log.WithError(err).Warn("cannot record the start of the snapshot; crawling anyway, it is stored when the database is back")
	}
	col := &collector{}
	c, err := m.cfg.Crawl(col, nil)
	if err != nil {
		return fmt.Errorf("monitor: %w", err)
	}
	m.mu.Lock()
	m.cur, m.curID, m.curStart = c, id, start
	m.mu.Unlock()
	sum, err := c.Run(ctx)
	m.mu.Lock()
	m.cur = nil
	m.mu.Unlock()
	m.cfg.Metrics.crawled(time.Since(start))
	log := m.log.WithField("snapshot", id)
	if ctx.Err() != nil || err != nil || sum.Interrupted {
		if err != nil && ctx.Err() == nil {
			log.WithError(err).Error("crawl failed; the snapshot is marked interrupted")
		} else {
			log.Infof("crawl stopped after %d records; the snapshot is marked interrupted, not stored", len(col.obs))
		}
		m.cfg.Metrics.interrupted()
		if id != 0 {
			mctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := store.MarkInterrupted(mctx, id, time.Now()); err != nil {
				log.WithError(err).Warn("cannot mark the snapshot interrupted (the next start will)")
			}
			cancel()
		}
		return nil
	}
	snap := &Snapshot{ID: id, Network: sum.Network, Started: start, Finished: sum.Finished, Summary: sum, Obs: col.obs}
	m.enqueue(snap)
	log.WithFields(logrus.Fields{"records": len(col.obs), "reachable": sum.ByOutcome[crawler.Reachable], "duration": time.Since(start).Round(time.Millisecond).String()}).
		Info("crawl done")
	return nil
}

func (m *Monitor) enqueue(s *Snapshot) {
	m.mu.Lock()
	m.pending = append(m.pending, s)
	if len(m.pending) > m.cfg.MaxPending {
		dropped := m.pending[0]
		m.pending = m.pending[1:]
		m.log.WithField("snapshot", dropped.ID).Errorf("the database has been unreachable for %d snapshots: dropping the oldest held in memory", m.cfg.MaxPending)
	}
	m.cfg.Metrics.setPending(len(m.pending))
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// writer stores pending snapshots in order, retrying with backoff.
func (m *Monitor) writer(ctx context.Context) {
	backoff := BackoffMin
	for {
		m.mu.Lock()
		var s *Snapshot
		if len(m.pending) > 0 {
			s = m.pending[0]
		}
		m.mu.Unlock()
		if s == nil {
			select {
			case <-m.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		if err := m.store(ctx, s); err != nil {
			if ctx.Err() != nil {
				return
			}
			m.cfg.Metrics.dbError()
			m.log.WithError(err).WithField("retry_in", backoff.String()).Warn("cannot store the snapshot; it is kept in memory and retried")
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return
			}
			backoff = min(backoff*2, BackoffMax)
			continue
		}
		backoff = BackoffMin
	}
}

// store writes s and, on success, takes it off the pending list.
func (m *Monitor) store(ctx context.Context, s *Snapshot) error {
	t0 := time.Now()
	if err := m.cfg.Store.WriteSnapshot(ctx, s); err != nil {
		return err
	}
	d := time.Since(t0)
	m.cfg.Metrics.stored(s, d)
	m.mu.Lock()
	m.pending = m.pending[1:]
	m.stored++
	m.lastID = s.ID
	m.cfg.Metrics.setPending(len(m.pending))
	m.mu.Unlock()
	m.log.WithFields(logrus.Fields{"snapshot": s.ID, "nodes": len(s.Obs), "write": d.Round(time.Millisecond).String()}).Info("snapshot stored")
	if err := m.cfg.Store.WarmLatest(ctx); err != nil {
		m.log.WithError(err).Warn("cannot load the new snapshot into memory (it is read from the database meanwhile)")
	}
	select {
	case m.storedSig <- struct{}{}:
	default:
	}
	return nil
}

// flush gives the pending snapshots one last bounded attempt at shutdown.
func (m *Monitor) flush() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		m.mu.Lock()
		n := len(m.pending)
		var s *Snapshot
		if n > 0 {
			s = m.pending[0]
		}
		m.mu.Unlock()
		if s == nil {
			return
		}
		if err := m.store(ctx, s); err != nil {
			m.log.WithError(err).Errorf("stopping with %d snapshots not stored", n)
			return
		}
	}
}

// between re-checks due nodes until next (or ctx ends).
func (m *Monitor) between(ctx context.Context, next time.Time) {
	for {
		wait := time.Until(next)
		if wait <= 0 {
			return
		}
		if m.cfg.Recheck <= 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
			}
			return
		}
		round := time.Now()
		m.recheck(ctx)
		pause := min(time.Until(next), m.cfg.Recheck-time.Since(round))
		if pause > 0 {
			select {
			case <-time.After(pause):
			case <-ctx.Done():
				return
			}
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// recheck dials the nodes due for a re-check and stores what it learns.
func (m *Monitor) recheck(ctx context.Context) {
	due := m.cfg.Store.Due(time.Now(), m.cfg.Recheck, m.cfg.RecheckLimit)
	if len(due) == 0 {
		return
	}
	col := &collector{}
	c, err := m.cfg.Crawl(col, due)
	if err != nil {
		m.log.WithError(err).Warn("cannot make the re-check crawler")
		return
	}
	if _, err := c.Run(ctx); err != nil && ctx.Err() == nil {
		m.log.WithError(err).Warn("re-check failed")
	}
	// Only the addresses asked about count (a peer's addr replies are not
	// dialled, but be sure).
	want := make(map[string]bool, len(due))
	for _, a := range due {
		want[a] = true
	}
	obs := col.obs[:0]
	for _, o := range col.obs {
		if want[o.Addr] && o.Outcome != crawler.NotDialled {
			obs = append(obs, o)
		}
	}
	if len(obs) == 0 {
		return
	}
	t0 := time.Now()
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := m.cfg.Store.Observe(wctx, obs); err != nil {
		m.cfg.Metrics.dbError()
		m.log.WithError(err).Warn("cannot store the re-checks (their scores wait for the next crawl)")
		return
	}
	m.cfg.Metrics.rechecked(obs, time.Since(t0))
	m.log.WithFields(logrus.Fields{"due": len(due), "checked": len(obs)}).Debug("re-checked nodes")
}
