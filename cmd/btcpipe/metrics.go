package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"

	"github.com/sirupsen/logrus"

	"github.com/btcpipe/btcpipe/crawler"
	"github.com/btcpipe/btcpipe/metrics"
	"github.com/btcpipe/btcpipe/peer"
	"github.com/btcpipe/btcpipe/report"
	"github.com/btcpipe/btcpipe/stages"
)

// MetricsConfig is the setting of the HTTP server for /metrics, /healthz and
// /readyz: a section of the node, crawl and healthcheck settings.
type MetricsConfig struct {
	Addr string `envconfig:"METRICS_ADDR" desc:"listen address of the HTTP server for /metrics, /healthz and /readyz, like :9090 or 127.0.0.1:9090; empty: off"`
}

func (c *MetricsConfig) validate() error {
	if c.Addr == "" {
		return nil
	}
	if _, err := splitListenAddr(c.Addr); err != nil {
		return fmt.Errorf("%s_METRICS_ADDR: %v", envPrefix, err)
	}
	return nil
}

// splitListenAddr checks a host:port listen address and returns its port.
func splitListenAddr(addr string) (int, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, fmt.Errorf("want host:port or :port, not %q", addr)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("bad port in %q: want 0-65535", addr)
	}
	return int(p), nil
}

// serveMetrics listens on c.Addr and serves m with ready behind /readyz
// until ctx ends. It returns once listening (an error if it cannot listen),
// and a function that waits for the graceful shutdown after ctx has ended
// (or ends it early itself). With c.Addr empty it does nothing.
func serveMetrics(ctx context.Context, log *logrus.Entry, c MetricsConfig, m *metrics.Metrics, ready func() bool) (wait func(), err error) {
	if c.Addr == "" {
		return func() {}, nil
	}
	srv, err := m.Listen(c.Addr, ready, log.WithField("component", "metrics"))
	if err != nil {
		return nil, fmt.Errorf("%s_METRICS_ADDR=%s: %w", envPrefix, c.Addr, err)
	}
	log.WithField("addr", srv.Addr().String()).
		Infof("serving %s, %s and %s on %s", metrics.PathMetrics, metrics.PathHealthz, metrics.PathReadyz, srv.Addr())
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ctx); err != nil && !errors.Is(err, context.Canceled) {
			log.WithError(err).Error("metrics server stopped")
		}
	}()
	return func() { cancel(); <-done }, nil
}

// startNodeMetrics instruments node and serves its metrics, if
// BTCPIPE_METRICS_ADDR is set; /readyz follows node.Ready.
func startNodeMetrics(ctx context.Context, e *env, mc MetricsConfig, node *peer.Node) (wait func(), err error) {
	if mc.Addr == "" {
		return func() {}, nil
	}
	m := metrics.New()
	m.InstrumentNode(node)
	return serveMetrics(ctx, e.log, mc, m, node.Ready)
}

// crawlExtras is what a crawl has besides its JSON lines: metrics (with
// BTCPIPE_METRICS_ADDR; /readyz answers ready while the crawl runs) and the
// HTML report (with BTCPIPE_CRAWL_REPORT, written when the crawl ends,
// interrupted or not). The crawl command uses it in four steps:
//
//	x, err := startCrawlExtras(ctx, log, mc, network, reportPath) // before crawler.New
//	defer x.close()
//	cfg.Out = x.sink(crawler.NewJSONLines(out))                // the crawler's sink
//	x.watch(c)                                                  // after crawler.New, before Run
//	err = x.finish(log)                                         // after Run: writes the report
type crawlExtras struct {
	m          *metrics.Metrics // nil: metrics off
	rep        *report.Report   // nil: no report
	reportPath string
	running    atomic.Bool
	wait       func()
}

// startCrawlExtras checks that the report can be written (so that a bad
// path fails before the crawl, not after it) and starts the metrics server
// when BTCPIPE_METRICS_ADDR is set.
func startCrawlExtras(ctx context.Context, log *logrus.Entry, mc MetricsConfig, network, reportPath string) (*crawlExtras, error) {
	x := &crawlExtras{reportPath: reportPath, wait: func() {}}
	if reportPath != "" {
		if err := checkWritable(reportPath); err != nil {
			return nil, fmt.Errorf("%s_CRAWL_REPORT: %w", envPrefix, err)
		}
		x.rep = report.New(network)
	}
	if mc.Addr == "" {
		return x, nil
	}
	x.m = metrics.New()
	wait, err := serveMetrics(ctx, log, mc, x.m, x.running.Load)
	if err != nil {
		return nil, err
	}
	x.wait = wait
	return x, nil
}

// sink returns the crawler's sink: out, counted into the metrics and fed to
// the report as well.
func (x *crawlExtras) sink(out crawler.Sink) crawler.Sink {
	if x.rep != nil {
		out = teeSink{out, x.rep}
	}
	if x.m != nil {
		out = x.m.Crawl.Sink(out)
	}
	return out
}

// stageOptions adds the metrics observer, when metrics are on, so crawl
// connections count frames and bytes like the node's.
func (x *crawlExtras) stageOptions(o stages.Options) stages.Options {
	if x.m != nil {
		o.Observer = x.m.Observer()
	}
	return o
}

// watch points the crawl gauges at c and marks the crawl running (ready).
func (x *crawlExtras) watch(c *crawler.Crawler) {
	if x.m != nil {
		x.m.Crawl.Watch(c.Stats)
	}
	x.running.Store(true)
}

// finish marks the crawl over and writes the report, if one was asked for.
func (x *crawlExtras) finish(log *logrus.Entry) error {
	x.running.Store(false)
	if x.rep == nil {
		return nil
	}
	if err := writeReport(x.reportPath, x.rep); err != nil {
		return fmt.Errorf("%s_CRAWL_REPORT: %w", envPrefix, err)
	}
	log.WithFields(logrus.Fields{"report": x.reportPath, "records": x.rep.Records()}).
		Infof("wrote the crawl report to %s", x.reportPath)
	return nil
}

// close waits for the metrics server's graceful shutdown (ctx must have
// ended, or it ends the server itself).
func (x *crawlExtras) close() { x.wait() }

// teeSink hands everything to its first sink, then to its second; the
// first one's error stops the crawl, the second's (the report, which only
// counts) cannot happen.
type teeSink struct{ first, second crawler.Sink }

func (t teeSink) Record(r *crawler.Record) error {
	if err := t.first.Record(r); err != nil {
		return err
	}
	return t.second.Record(r)
}

func (t teeSink) Summary(s *crawler.Summary) error {
	if err := t.first.Summary(s); err != nil {
		return err
	}
	return t.second.Summary(s)
}

// checkWritable reports whether a file can be created in path's directory
// (and path is not a directory).
func checkWritable(path string) error {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("%s is a directory", path)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".btcpipe-report-*")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

// writeReport writes rep to path through a temporary file in the same
// directory, renamed into place: a reader never sees half a report.
func writeReport(path string, rep *report.Report) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".btcpipe-report-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // after a successful rename, nothing to remove
	if err := rep.WriteHTML(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
