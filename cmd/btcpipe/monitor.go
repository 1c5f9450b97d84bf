package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/btcpipe/btcpipe/crawler"
	"github.com/btcpipe/btcpipe/dashboard"
	"github.com/btcpipe/btcpipe/internal/version"
	"github.com/btcpipe/btcpipe/metrics"
	"github.com/btcpipe/btcpipe/monitor"
	"github.com/btcpipe/btcpipe/wire"
)

// MonitorConfig is `btcpipe monitor`'s own section; its crawls take
// BTCPIPE_SEEDS and BTCPIPE_CRAWL_* from CrawlConfig, as btcpipe crawl does.
type MonitorConfig struct {
	DB           string        `envconfig:"DB" desc:"monitor: the database: an SQLite file, or postgres://user:pass@host/db for PostgreSQL"`
	HTTPAddr     string        `envconfig:"HTTP_ADDR" desc:"monitor: listen address of the dashboard (/), the API (/api/v1/...), /metrics, /healthz and /readyz; empty: off"`
	Interval     time.Duration `envconfig:"MONITOR_INTERVAL" desc:"monitor: from the start of one crawl to the start of the next"`
	Recheck      time.Duration `envconfig:"MONITOR_RECHECK" desc:"monitor: between crawls, re-check known reachable nodes whose uptime is uncertain this often (settled ones 4 times less); 0: off"`
	RecheckLimit int           `envconfig:"MONITOR_RECHECK_LIMIT" desc:"monitor: most nodes re-checked in one round"`
	Vantage      string        `envconfig:"MONITOR_VANTAGE" desc:"monitor: the name of this monitor in a shared database; empty: the host name"`
	MaxRun       int           `envconfig:"MONITOR_MAX_RUN" desc:"monitor: most snapshots in one stored run of unchanged node state"`
	Snapshots    int           `envconfig:"MONITOR_SNAPSHOTS" desc:"monitor: stop after storing this many snapshots; 0: run until stopped"`
}

// Defaults of MonitorConfig.
const (
	defaultMonitorDB           = "btcpipe.db"
	defaultMonitorHTTPAddr     = ":8080"
	defaultMonitorInterval     = 10 * time.Minute
	defaultMonitorRecheck      = 2 * time.Minute
	defaultMonitorRecheckLimit = 2000
)

func defaultMonitorConfig() MonitorConfig {
	return MonitorConfig{
		DB: defaultMonitorDB, HTTPAddr: defaultMonitorHTTPAddr, Interval: defaultMonitorInterval,
		Recheck: defaultMonitorRecheck, RecheckLimit: defaultMonitorRecheckLimit, MaxRun: monitor.DefaultMaxRunSnapshots,
	}
}

// monitorSettings are what `btcpipe monitor` reads.
type monitorSettings struct {
	Config
	CrawlConfig
	MonitorConfig
}

func (s *monitorSettings) validate() error {
	for _, v := range []func() error{s.Config.validate, s.CrawlConfig.validate, s.MonitorConfig.validate} {
		if err := v(); err != nil {
			return err
		}
	}
	return nil
}

func defaultMonitorSettings() monitorSettings {
	return monitorSettings{Config: defaultConfig(), CrawlConfig: defaultCrawlConfig(), MonitorConfig: defaultMonitorConfig()}
}

func init() {
	register("monitor", "",
		"crawl every BTCPIPE_MONITOR_INTERVAL into a database; serve snapshots, node histories, uptime and exports as a JSON API",
		defaultMonitorSettings, runMonitor)
}

func (c *MonitorConfig) validate() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("%s_%s: %s", envPrefix, key, fmt.Sprintf(format, args...))
	}
	if c.DB == "" {
		return bad("DB", "empty: want an SQLite file name or a postgres:// URL")
	}
	if c.HTTPAddr != "" {
		if _, err := splitListenAddr(c.HTTPAddr); err != nil {
			return bad("HTTP_ADDR", "%v", err)
		}
	}
	if c.Interval < time.Second {
		return bad("MONITOR_INTERVAL", "must be at least 1s, not %s", c.Interval)
	}
	if c.Recheck < 0 {
		return bad("MONITOR_RECHECK", "must not be negative")
	}
	if c.RecheckLimit < 1 {
		return bad("MONITOR_RECHECK_LIMIT", "must be at least 1")
	}
	if c.MaxRun < 1 || c.MaxRun > 100_000 {
		return bad("MONITOR_MAX_RUN", "must be 1 to 100000, not %d", c.MaxRun)
	}
	if c.Snapshots < 0 {
		return bad("MONITOR_SNAPSHOTS", "must not be negative")
	}
	if len(c.Vantage) > 64 {
		return bad("MONITOR_VANTAGE", "at most 64 bytes")
	}
	return nil
}

// redactDSN hides the password of a postgres:// URL.
func redactDSN(dsn string) string {
	if !monitor.IsPostgres(dsn) {
		return dsn
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "postgres://…"
	}
	return u.Redacted()
}

// runMonitor is `btcpipe monitor`. A first SIGTERM or SIGINT stops it: the
// crawl under way is marked interrupted, snapshots not yet stored get one
// last attempt, and it exits 0.
func runMonitor(ctx context.Context, e *env, s *monitorSettings, args []string) int {
	if len(args) > 0 {
		fmt.Fprintf(e.stderr, "btcpipe: monitor takes no arguments (settings come from BTCPIPE_* variables; see btcpipe help)\n")
		return exitUsage
	}
	return runMonitorWith(ctx, e, s, nil, nil)
}

// runMonitorWith runs the monitor; dial, if set, replaces the network
// dialer, and listening, if set, is told the API's address (for tests).
func runMonitorWith(ctx context.Context, e *env, s *monitorSettings,
	dial func(context.Context, netip.AddrPort) (net.Conn, error), listening func(net.Addr)) int {
	cfg, cc, mc, log := &s.Config, &s.CrawlConfig, &s.MonitorConfig, e.log
	network, _ := wire.NetworkByName(cfg.Network) // validated
	allow := cc.allow
	if allow == nil {
		allow = crawler.DefaultAllow(network)
	}
	vantage := mc.Vantage
	if vantage == "" {
		vantage, _ = os.Hostname()
		if vantage == "" {
			vantage = "monitor"
		}
	}
	store, err := monitor.Open(ctx, mc.DB, vantage, network.Name)
	if err != nil {
		fmt.Fprintf(e.stderr, "btcpipe: monitor: %s_DB=%s: %v\n", envPrefix, redactDSN(mc.DB), err)
		return exitUsage
	}
	defer store.Close()
	store.SetMaxRunSnapshots(mc.MaxRun)

	m := metrics.New()
	mm := monitor.NewMetrics(m.Registry)
	session := sessionConfig(cfg)
	crawlLog := log.WithField("component", "crawl")
	pcfg := pipelineConfig(cfg) // one process budget for every crawl
	newCrawler := func(out crawler.Sink, seeds []string) (*crawler.Crawler, error) {
		c := crawler.Config{
			Session:  session,
			Pipeline: pcfg,
			Seeds:    cc.Seeds, Allow: allow, Concurrency: cc.Concurrency, DialRate: cc.DialRate,
			ConnectTimeout: cc.ConnectTimeout, HandshakeTimeout: cc.HandshakeTimeout, GetAddrTimeout: cc.GetAddrTimeout,
			Quiet: cc.Quiet, MaxNodes: cc.MaxNodes, Dial: dial, Out: out, Log: crawlLog,
		}
		c.Pipeline.Options.Observer = m.Observer()
		if seeds != nil { // a re-check: only these, briefly
			c.Seeds, c.MaxNodes = seeds, len(seeds)
			c.GetAddrTimeout, c.Quiet = min(c.GetAddrTimeout, 2*time.Second), min(c.Quiet, 500*time.Millisecond)
			c.Log = crawlLog.WithField("recheck", len(seeds))
		} else {
			c.Out = m.Crawl.Sink(out)
		}
		cr, err := crawler.New(c)
		if err == nil && seeds == nil {
			m.Crawl.Watch(cr.Stats)
		}
		return cr, err
	}
	mon, err := monitor.New(monitor.Config{
		Store: store, Crawl: newCrawler, Interval: mc.Interval, Recheck: mc.Recheck, RecheckLimit: mc.RecheckLimit,
		Snapshots: mc.Snapshots, Metrics: mm, Log: log,
	})
	if err != nil {
		log.WithError(err).Error("bad monitor configuration")
		return exitUsage
	}
	// Check the crawl configuration before serving anything.
	if _, err := newCrawler(&discard{}, nil); err != nil {
		log.WithError(err).Error("bad crawl configuration")
		return exitUsage
	}

	var running atomic.Bool
	waitHTTP := func() {}
	if mc.HTTPAddr != "" {
		mux := http.NewServeMux()
		monitor.NewAPI(store, mon.Progress, log.WithField("component", "api")).Register(mux)
		// The dashboard (issue 17) at /, beside the metrics and health checks.
		mh := metrics.Handler(m.Registry, m.Registry, running.Load)
		for _, p := range []string{metrics.PathMetrics, metrics.PathHealthz, metrics.PathReadyz} {
			mux.Handle(p, mh)
		}
		mux.Handle("/", dashboard.New(store, mon.Progress, log.WithField("component", "dashboard")))
		srv, err := metrics.Listen(mc.HTTPAddr, mux, log.WithField("component", "http"))
		if err != nil {
			fmt.Fprintf(e.stderr, "btcpipe: monitor: %s_HTTP_ADDR=%s: %v\n", envPrefix, mc.HTTPAddr, err)
			return exitUsage
		}
		if listening != nil {
			listening(srv.Addr())
		}
		sctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := srv.Serve(sctx); err != nil && !errors.Is(err, context.Canceled) {
				log.WithError(err).Error("HTTP server stopped")
			}
		}()
		waitHTTP = func() { cancel(); <-done }
		log.WithField("addr", srv.Addr().String()).Infof("serving the dashboard on http://%s/ and the API on http://%s/api/v1/snapshots", srv.Addr(), srv.Addr())
	}
	defer waitHTTP()
	log.WithFields(logrus.Fields{
		"network": network.Name, "db": redactDSN(mc.DB), "backend": store.Dialect(), "vantage": vantage,
		"interval": mc.Interval.String(), "recheck": mc.Recheck.String(),
	}).Infof("btcpipe %s monitoring %s", version.Version, network.Name)
	running.Store(true)
	err = mon.Run(ctx)
	running.Store(false)
	if err != nil {
		log.WithError(err).Error("monitor failed")
		return exitFailed
	}
	return exitOK
}

// discard is a sink for the configuration check.
type discard struct{}

func (discard) Record(*crawler.Record) error   { return nil }
func (discard) Summary(*crawler.Summary) error { return nil }
