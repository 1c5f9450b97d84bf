package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/btcpipe/btcpipe/crawler"
	"github.com/btcpipe/btcpipe/internal/hostport"
	"github.com/btcpipe/btcpipe/internal/version"
	"github.com/btcpipe/btcpipe/wire"
)

// CrawlConfig is what `btcpipe crawl` reads besides the shared settings
// (BTCPIPE_NETWORK, BTCPIPE_USER_AGENT, BTCPIPE_MIN_PROTOCOL,
// BTCPIPE_SEND_ADDRV2, the stage settings and the log settings) and the
// metrics address. Its defaults are the crawler's (defaultCrawlConfig).
type CrawlConfig struct {
	Seeds            []string      `envconfig:"SEEDS" desc:"crawl: where to start, comma-separated host:port, [IPv6]:port, addresses or host names; empty: the network's DNS seeds (regtest, simnet: 127.0.0.1)"`
	Concurrency      int           `envconfig:"CRAWL_CONCURRENCY" desc:"crawl: most connections open at once (each one file descriptor)"`
	Allow            []string      `envconfig:"CRAWL_ALLOW" desc:"crawl: comma-separated CIDR prefixes that may be dialled; empty: public addresses (mainnet, testnets, signet) or loopback (regtest, simnet); bogons only when named"`
	Out              string        `envconfig:"CRAWL_OUT" desc:"crawl: file to append the JSON lines to; empty: stdout, and the log goes to stderr"`
	DialRate         float64       `envconfig:"CRAWL_DIAL_RATE" desc:"crawl: most new connections per second; 0: no cap"`
	ConnectTimeout   time.Duration `envconfig:"CRAWL_CONNECT_TIMEOUT" desc:"crawl: TCP connect timeout (Bitcoin Core's own)"`
	ProxyTimeout     time.Duration `envconfig:"CRAWL_PROXY_TIMEOUT" desc:"crawl: connect timeout through Tor, the clearnet proxy or the I2P SAM bridge"`
	MaxAge           time.Duration `envconfig:"CRAWL_MAX_AGE" desc:"crawl: skip addresses last announced longer ago (counted as stale, not dialled); 0: no limit"`
	HandshakeTimeout time.Duration `envconfig:"CRAWL_HANDSHAKE_TIMEOUT" desc:"crawl: version handshake timeout"`
	GetAddrTimeout   time.Duration `envconfig:"CRAWL_GETADDR_TIMEOUT" desc:"crawl: longest wait for addresses after the handshake"`
	Quiet            time.Duration `envconfig:"CRAWL_QUIET" desc:"crawl: after a full 1,000-entry addr message from a peer that may send more (not Bitcoin Core), wait this long for the next"`
	MaxNodes         int           `envconfig:"CRAWL_MAX_NODES" desc:"crawl: most unique addresses kept (a memory cap); later ones are counted, not recorded"`
	ProgressInterval time.Duration `envconfig:"CRAWL_PROGRESS_INTERVAL" desc:"crawl: how often to log a progress line; 0: never"`
	Report           string        `envconfig:"CRAWL_REPORT" desc:"crawl: file to write a self-contained HTML report to when the crawl ends; empty: none"`

	allow []netip.Prefix // parsed Allow
}

// defaultCrawlProgressInterval is the crawl command's own default: the
// crawler logs no progress unless told.
const defaultCrawlProgressInterval = 5 * time.Second

// defaultCrawlConfig returns the crawl settings at their defaults: the
// crawler package's.
func defaultCrawlConfig() CrawlConfig {
	return CrawlConfig{
		Concurrency:      crawler.DefaultConcurrency,
		DialRate:         crawler.DefaultDialRate,
		ProxyTimeout:     crawler.DefaultProxyConnectTimeout,
		MaxAge:           crawler.DefaultMaxAge,
		ConnectTimeout:   crawler.DefaultConnectTimeout,
		HandshakeTimeout: crawler.DefaultHandshakeTimeout,
		GetAddrTimeout:   crawler.DefaultGetAddrTimeout,
		Quiet:            crawler.DefaultQuiet,
		MaxNodes:         crawler.DefaultMaxNodes,
		ProgressInterval: defaultCrawlProgressInterval,
	}
}

// crawlSettings are what `btcpipe crawl` reads.
type crawlSettings struct {
	Config
	CrawlConfig
	MetricsConfig
}

func (s *crawlSettings) validate() error {
	for _, v := range []func() error{s.Config.validate, s.CrawlConfig.validate, s.MetricsConfig.validate} {
		if err := v(); err != nil {
			return err
		}
	}
	return nil
}

func defaultCrawlSettings() crawlSettings {
	return crawlSettings{Config: defaultConfig(), CrawlConfig: defaultCrawlConfig()}
}

func init() {
	register("crawl", "",
		"walk the network from the seeds: one JSON line per node, then a summary line",
		defaultCrawlSettings, runCrawl)
}

func (c *CrawlConfig) validate() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("%s_%s: %s", envPrefix, key, fmt.Sprintf(format, args...))
	}
	for _, s := range c.Seeds {
		if _, _, err := hostport.Split(s, 1); err != nil {
			return bad("SEEDS", "%v", err)
		}
	}
	if c.Concurrency < 1 || c.Concurrency > 65536 {
		return bad("CRAWL_CONCURRENCY", "must be 1 to 65536, not %d", c.Concurrency)
	}
	allow, err := crawler.ParsePrefixes(c.Allow)
	if err != nil {
		return bad("CRAWL_ALLOW", "%v", err)
	}
	if len(c.Allow) > 0 && len(allow) == 0 {
		return bad("CRAWL_ALLOW", "no prefix in %q", c.Allow)
	}
	c.allow = allow
	if c.DialRate < 0 {
		return bad("CRAWL_DIAL_RATE", "must not be negative")
	}
	for _, d := range []struct {
		key string
		d   time.Duration
	}{
		{"CRAWL_CONNECT_TIMEOUT", c.ConnectTimeout}, {"CRAWL_HANDSHAKE_TIMEOUT", c.HandshakeTimeout},
		{"CRAWL_GETADDR_TIMEOUT", c.GetAddrTimeout}, {"CRAWL_QUIET", c.Quiet},
		{"CRAWL_PROXY_TIMEOUT", c.ProxyTimeout},
	} {
		if d.d <= 0 {
			return bad(d.key, "must be a positive duration, like 5s")
		}
	}
	if c.ProgressInterval < 0 {
		return bad("CRAWL_PROGRESS_INTERVAL", "must not be negative")
	}
	if c.MaxNodes < 1 {
		return bad("CRAWL_MAX_NODES", "must be at least 1")
	}
	if c.MaxAge < 0 {
		return bad("CRAWL_MAX_AGE", "must not be negative (0: no limit)")
	}
	return nil
}

// runCrawl is `btcpipe crawl`. Node lines and the summary line go to
// BTCPIPE_CRAWL_OUT (appended, one write(2) per line) or, when that is
// empty, to stdout — and then the log goes to stderr, so that stdout holds
// nothing but JSON lines. A first SIGTERM or SIGINT stops the crawl: the
// connections under way end, the summary line (interrupted: true) is
// written and btcpipe exits 0.
func runCrawl(ctx context.Context, e *env, s *crawlSettings, args []string) int {
	if len(args) > 0 {
		fmt.Fprintf(e.stderr, "btcpipe: crawl takes no arguments (settings come from BTCPIPE_* variables; see btcpipe help)\n")
		return exitUsage
	}
	return crawl(ctx, e, s, nil)
}

// crawl runs a crawl with s; dial, if set, replaces the network dialer
// (for tests).
func crawl(ctx context.Context, e *env, s *crawlSettings, dial func(context.Context, netip.AddrPort) (net.Conn, error)) int {
	cfg, cc, log := &s.Config, &s.CrawlConfig, e.log
	var out io.Writer = e.stdout
	if cc.Out != "" {
		f, ok := openAppend(cc.Out, "CRAWL_OUT", log)
		if !ok {
			return exitFailed
		}
		defer f.Close()
		out = f
	} else {
		log = newLogger(*cfg, e.stderr) // stdout carries only JSON lines
	}

	network, _ := wire.NetworkByName(cfg.Network) // validated
	sess := sessionConfig(cfg)
	allow := cc.allow
	if allow == nil {
		allow = crawler.DefaultAllow(network)
	}
	extras, err := startCrawlExtras(ctx, log, s.MetricsConfig, network.Name, cc.Report)
	if err != nil {
		log.WithError(err).Error("cannot set up the crawl's metrics or report")
		return exitFailed
	}
	defer extras.close()
	dialRate, maxAge := cc.DialRate, cc.MaxAge
	if dialRate == 0 {
		dialRate = -1 // no cap
	}
	if maxAge == 0 {
		maxAge = -1 // no limit
	}
	reach := reachConfig(cfg)
	pcfg := pipelineConfig(cfg)
	pcfg.Options = extras.stageOptions(pcfg.Options)
	c, err := crawler.New(crawler.Config{
		Session:             sess,
		Pipeline:            pcfg,
		Transport:           cfg.Transport,
		Seeds:               cc.Seeds,
		Allow:               allow,
		Concurrency:         cc.Concurrency,
		DialRate:            dialRate,
		Reach:               reach,
		ProxyConnectTimeout: cc.ProxyTimeout,
		MaxAge:              maxAge,
		ConnectTimeout:      cc.ConnectTimeout,
		HandshakeTimeout:    cc.HandshakeTimeout,
		GetAddrTimeout:      cc.GetAddrTimeout,
		Quiet:               cc.Quiet,
		MaxNodes:            cc.MaxNodes,
		ProgressInterval:    cc.ProgressInterval,
		Dial:                dial,
		Out:                 extras.sink(crawler.NewJSONLines(out)),
		Log:                 log,
	})
	if err != nil {
		log.WithError(err).Error("bad crawl configuration")
		return exitUsage
	}
	seeds := "DNS seeds"
	if len(cc.Seeds) > 0 {
		seeds = fmt.Sprint(cc.Seeds)
	}
	log.WithFields(logrus.Fields{
		"network": network.Name, "seeds": seeds, "allow": c.Allowlist().String(),
		"concurrency": cc.Concurrency, "dial_rate": cc.DialRate, "quiet": cc.Quiet.String(),
		"tor_proxy": reach.TorProxy, "i2p_sam": reach.I2PSAM, "cjdns": reach.CJDNSReachable,
		"proxy": reach.Proxy, "onlynet": cfg.OnlyNet, "max_age": cc.MaxAge.String(),
	}).Infof("btcpipe %s crawling %s", version.Version, network.Name)
	extras.watch(c)
	_, err = c.Run(ctx)
	reportErr := extras.finish(log)
	if err != nil && !(errors.Is(err, context.Canceled) && ctx.Err() != nil) {
		log.WithError(err).Error("crawl failed")
		return exitFailed
	}
	if reportErr != nil {
		log.WithError(reportErr).Error("cannot write the crawl report")
		return exitFailed
	}
	return exitOK
}
