package crawler

import (
	"context"
	"math"
	"runtime"
	"time"

	"github.com/sirupsen/logrus"
)

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

// finalSummary completes the running summary.
func (c *Crawler) finalSummary(started time.Time, parent context.Context) Summary {
	c.outMu.Lock()
	s := c.summary
	c.outMu.Unlock()
	s.unique = nil
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
