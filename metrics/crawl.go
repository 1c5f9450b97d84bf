package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/btcpipe/btcpipe/crawler"
)

// OtherClass is the failure class label of an outcome the crawler package
// does not list (none today; it bounds the label set all the same).
const OtherClass = "other"

// Crawl counts what a crawler does: the records it writes (through Sink)
// and its running counters (through Watch, read at scrape time). Safe for
// concurrent use.
type Crawl struct {
	reachable, notDialled prometheus.Counter
	failures              map[crawler.Outcome]prometheus.Counter // every failure class, fixed at construction
	other                 prometheus.Counter

	mu    sync.Mutex
	stats func() crawler.Stats
}

func newCrawl(reg prometheus.Registerer) *Crawl {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "crawl", Name: name, Help: help})
	}
	c := &Crawl{
		reachable:  counter("reachable_total", "Addresses whose handshake completed (node records with outcome reachable)."),
		notDialled: counter("not_dialled_total", "Addresses recorded but not dialled: outside the allowlist, bogons, Tor, I2P, CJDNS."),
		failures:   map[crawler.Outcome]prometheus.Counter{},
	}
	failures := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "crawl", Name: "failures_total",
		Help: "Connection attempts that failed, by class (the record's outcome: refused, timeout, reset, unreachable, handshake_failed, closed_after_verack, self, version_too_old).",
	}, []string{"class"})
	for _, o := range crawler.Outcomes {
		if o.Failed() {
			c.failures[o] = failures.WithLabelValues(string(o))
		}
	}
	c.other = failures.WithLabelValues(OtherClass)
	stat := func(f func(crawler.Stats) int) func() float64 {
		return func() float64 {
			c.mu.Lock()
			s := c.stats
			c.mu.Unlock()
			if s == nil {
				return 0
			}
			return float64(f(s()))
		}
	}
	reg.MustRegister(c.reachable, c.notDialled, failures,
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "crawl", Name: "discovered_total",
			Help: "Unique addresses the crawl has learned (seeds included).",
		}, stat(func(s crawler.Stats) int { return s.Discovered })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "crawl", Name: "tried_total",
			Help: "Connection attempts the crawl has begun.",
		}, stat(func(s crawler.Stats) int { return s.Tried })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: Namespace, Subsystem: "crawl", Name: "in_flight",
			Help: "Connection attempts under way now.",
		}, stat(func(s crawler.Stats) int { return s.InFlight })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: Namespace, Subsystem: "crawl", Name: "queued",
			Help: "Addresses learned and waiting to be dialled.",
		}, stat(func(s crawler.Stats) int { return s.Queued })),
	)
	return c
}

// Watch makes btcpipe_crawl_discovered_total, _tried_total, _in_flight and
// _queued read stats (a running crawler's Stats method) at every scrape.
func (c *Crawl) Watch(stats func() crawler.Stats) {
	c.mu.Lock()
	c.stats = stats
	c.mu.Unlock()
}

// Sink returns a crawler.Sink that counts every record by outcome into
// btcpipe_crawl_reachable_total, _failures_total and _not_dialled_total, then
// hands it to next.
func (c *Crawl) Sink(next crawler.Sink) crawler.Sink { return crawlSink{c, next} }

// Count counts one record's outcome.
func (c *Crawl) Count(o crawler.Outcome) {
	switch {
	case o == crawler.Reachable:
		c.reachable.Inc()
	case o == crawler.NotDialled:
		c.notDialled.Inc()
	default:
		if f, ok := c.failures[o]; ok {
			f.Inc()
		} else {
			c.other.Inc()
		}
	}
}

type crawlSink struct {
	c    *Crawl
	next crawler.Sink
}

func (s crawlSink) Record(r *crawler.Record) error {
	s.c.Count(r.Outcome)
	return s.next.Record(r)
}

func (s crawlSink) Summary(sum *crawler.Summary) error { return s.next.Summary(sum) }
