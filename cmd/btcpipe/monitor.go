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
	"github.com/btcpipe/btcpipe/metrics"
	"github.com/btcpipe/btcpipe/monitor"
	"github.com/btcpipe/btcpipe/peer"
	"github.com/btcpipe/btcpipe/pipeline"
	"github.com/btcpipe/btcpipe/wire"
)

// monitorConfig is `btcpipe monitor`'s own section. The crawl settings
// (BTCPIPE_SEEDS, BTCPIPE_CRAWL_*) are crawl's, read again by the monitor
// into monitorCrawlConfig.
type monitorConfig struct {
	DB           string        `envconfig:"DB" default:"btcpipe.db" desc:"monitor: the database: an SQLite file, or postgres://user:pass@host/db for PostgreSQL"`
	HTTPAddr     string        `envconfig:"HTTP_ADDR" default:":8080" desc:"monitor: listen address of the dashboard (/), the API (/api/v1/...), /metrics, /healthz and /readyz; empty: off"`
	Interval     time.Duration `envconfig:"MONITOR_INTERVAL" default:"10m" desc:"monitor: from the start of one crawl to the start of the next"`
	Recheck      time.Duration `envconfig:"MONITOR_RECHECK" default:"2m" desc:"monitor: between crawls, re-check known reachable nodes whose uptime is uncertain this often (settled ones 4 times less); 0: off"`
	RecheckLimit int           `envconfig:"MONITOR_RECHECK_LIMIT" default:"2000" desc:"monitor: most nodes re-checked in one round"`
	Vantage      string        `envconfig:"MONITOR_VANTAGE" desc:"monitor: the name of this monitor in a shared database; empty: the host name"`
	MaxRun       int           `envconfig:"MONITOR_MAX_RUN" default:"36" desc:"monitor: most snapshots in one stored run of unchanged node state"`
	Snapshots    int           `envconfig:"MONITOR_SNAPSHOTS" default:"0" desc:"monitor: stop after storing this many snapshots; 0: run until stopped"`
}

// monitorCrawlConfig is what each of the monitor's crawls reads, under the
// same names as btcpipe crawl's settings.
type monitorCrawlConfig struct {
	Seeds            []string      `envconfig:"SEEDS"`
	Concurrency      int           `envconfig:"CRAWL_CONCURRENCY" default:"256"`
	Allow            []string      `envconfig:"CRAWL_ALLOW"`
	DialRate         float64       `envconfig:"CRAWL_DIAL_RATE" default:"100"`
	ConnectTimeout   time.Duration `envconfig:"CRAWL_CONNECT_TIMEOUT" default:"5s"`
	HandshakeTimeout time.Duration `envconfig:"CRAWL_HANDSHAKE_TIMEOUT" default:"10s"`
	GetAddrTimeout   time.Duration `envconfig:"CRAWL_GETADDR_TIMEOUT" default:"30s"`
	Quiet            time.Duration `envconfig:"CRAWL_QUIET" default:"2s"`
	MaxNodes         int           `envconfig:"CRAWL_MAX_NODES" default:"200000"`
}

var monitorCfg monitorConfig

func init() {
	register(&command{
		name:    "monitor",
		summary: "crawl every BTCPIPE_MONITOR_INTERVAL into a database; serve snapshots, node histories, uptime and exports as a JSON API",
		config:  &monitorCfg,
		run:     runMonitor,
	})
}

func (c *monitorConfig) validate() error {
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

func (c *monitorCrawlConfig) validate() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("%s_%s: %s", envPrefix, key, fmt.Sprintf(format, args...))
	}
	for _, s := range c.Seeds {
		if _, _, err := peer.SplitHostPort(s, 1); err != nil {
			return bad("SEEDS", "%v", err)
		}
	}
	if c.Concurrency < 1 || c.Concurrency > 65536 {
		return bad("CRAWL_CONCURRENCY", "must be 1 to 65536, not %d", c.Concurrency)
	}
	if c.DialRate < 0 {
		return bad("CRAWL_DIAL_RATE", "must not be negative")
	}
	for _, d := range []struct {
		key string
		d   time.Duration
	}{
		{"CRAWL_CONNECT_TIMEOUT", c.ConnectTimeout}, {"CRAWL_HANDSHAKE_TIMEOUT", c.HandshakeTimeout},
		{"CRAWL_GETADDR_TIMEOUT", c.GetAddrTimeout}, {"CRAWL_QUIET", c.Quiet},
	} {
		if d.d <= 0 {
			return bad(d.key, "must be a positive duration, like 5s")
		}
	}
	if c.MaxNodes < 1 {
		return bad("CRAWL_MAX_NODES", "must be at least 1")
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
func runMonitor(ctx context.Context, e *env, args []string) int {
	if len(args) > 0 {
		fmt.Fprintf(e.stderr, "btcpipe: monitor takes no arguments (settings come from BTCPIPE_* variables; see btcpipe help)\n")
		return exitUsage
	}
	var cc monitorCrawlConfig
	if err := loadSection(&cc); err != nil {
		fmt.Fprintf(e.stderr, "btcpipe: bad configuration: %v\n", err)
		return exitUsage
	}
	return runMonitorWith(ctx, e, &monitorCfg, &cc, nil, nil)
}

// runMonitorWith runs the monitor; dial, if set, replaces the network
// dialer, and listening, if set, is told the API's address (for tests).
func runMonitorWith(ctx context.Context, e *env, mc *monitorConfig, cc *monitorCrawlConfig,
	dial func(context.Context, netip.AddrPort) (net.Conn, error), listening func(net.Addr)) int {
	cfg, log := e.cfg, e.log
	network, _ := wire.NetworkByName(cfg.Network) // validated
	allow, err := crawler.ParsePrefixes(cc.Allow)
	if err != nil || (len(cc.Allow) > 0 && len(allow) == 0) {
		fmt.Fprintf(e.stderr, "btcpipe: bad configuration: %s_CRAWL_ALLOW: %v\n", envPrefix, err)
		return exitUsage
	}
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
	session := peer.DefaultConfig(network)
	if cfg.UserAgent != "" {
		session.UserAgent = cfg.UserAgent
	}
	session.MinProtocol, session.SendAddrV2 = cfg.MinProtocol, cfg.SendAddrV2
	workers := cfg.Workers
	if workers == 0 {
		workers = 1
	}
	crawlLog := log.WithField("component", "crawl")
	newCrawler := func(out crawler.Sink, seeds []string) (*crawler.Crawler, error) {
		c := crawler.Config{
			Session: session,
			Pipeline: pipeline.Config{
				QueueDepth: cfg.QueueDepth, Framer: cfg.Framer, Verifier: cfg.Verifier,
			},
			Seeds: cc.Seeds, Allow: allow, Concurrency: cc.Concurrency, DialRate: cc.DialRate,
			ConnectTimeout: cc.ConnectTimeout, HandshakeTimeout: cc.HandshakeTimeout, GetAddrTimeout: cc.GetAddrTimeout,
			Quiet: cc.Quiet, MaxNodes: cc.MaxNodes, Dial: dial, Out: out, Log: crawlLog,
		}
		c.Pipeline.Options.ReadSize, c.Pipeline.Options.Workers, c.Pipeline.Options.WriteTimeout = cfg.ReadBuffer, workers, cfg.WriteTimeout
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
	}).Infof("btcpipe %s monitoring %s", peer.Version, network.Name)
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
