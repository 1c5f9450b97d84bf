package monitor

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the monitor's Prometheus metrics.
type Metrics struct {
	snapshotDuration prometheus.Histogram
	nodes            *prometheus.GaugeVec
	dbWrite          *prometheus.HistogramVec
	dbErrors         prometheus.Counter
	snapshots        *prometheus.CounterVec
	pending          prometheus.Gauge
	rechecks         *prometheus.CounterVec
}

// NewMetrics registers the monitor's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		snapshotDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "btcpipe_monitor_snapshot_duration_seconds", Help: "Time a snapshot's crawl took, from its start to its summary.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14),
		}),
		nodes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "btcpipe_monitor_snapshot_nodes", Help: "Nodes of the latest stored snapshot by network and outcome.",
		}, []string{"network", "outcome"}),
		dbWrite: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "btcpipe_monitor_db_write_seconds", Help: "Time of each successful database write transaction, by kind (snapshot, recheck).",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}, []string{"kind"}),
		dbErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "btcpipe_monitor_db_errors_total", Help: "Database writes that failed (and are retried with backoff).",
		}),
		snapshots: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "btcpipe_monitor_snapshots_total", Help: "Snapshots by how they ended: complete (stored) or interrupted.",
		}, []string{"status"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "btcpipe_monitor_pending_snapshots", Help: "Snapshots crawled and held in memory, not yet stored.",
		}),
		rechecks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "btcpipe_monitor_rechecks_total", Help: "Re-checks of known nodes between crawls, by outcome.",
		}, []string{"outcome"}),
	}
	reg.MustRegister(m.snapshotDuration, m.nodes, m.dbWrite, m.dbErrors, m.snapshots, m.pending, m.rechecks)
	for _, s := range []string{StatusComplete, StatusInterrupted} {
		m.snapshots.WithLabelValues(s)
	}
	m.dbWrite.WithLabelValues("snapshot")
	m.dbWrite.WithLabelValues("recheck")
	return m
}

// The methods below accept a nil *Metrics (metrics off).

func (m *Metrics) crawled(d time.Duration) {
	if m != nil {
		m.snapshotDuration.Observe(d.Seconds())
	}
}

func (m *Metrics) stored(snap *Snapshot, d time.Duration) {
	if m == nil {
		return
	}
	m.dbWrite.WithLabelValues("snapshot").Observe(d.Seconds())
	m.snapshots.WithLabelValues(StatusComplete).Inc()
	m.nodes.Reset()
	type key struct{ network, outcome string }
	c := map[key]int{}
	for i := range snap.Obs {
		c[key{snap.Obs[i].Network, string(snap.Obs[i].Outcome)}]++
	}
	for k, n := range c {
		m.nodes.WithLabelValues(k.network, k.outcome).Set(float64(n))
	}
}

func (m *Metrics) rechecked(obs []Observation, d time.Duration) {
	if m == nil {
		return
	}
	m.dbWrite.WithLabelValues("recheck").Observe(d.Seconds())
	for i := range obs {
		m.rechecks.WithLabelValues(string(obs[i].Outcome)).Inc()
	}
}

func (m *Metrics) interrupted() {
	if m != nil {
		m.snapshots.WithLabelValues(StatusInterrupted).Inc()
	}
}

func (m *Metrics) dbError() {
	if m != nil {
		m.dbErrors.Inc()
	}
}

func (m *Metrics) setPending(n int) {
	if m != nil {
		m.pending.Set(float64(n))
	}
}
