package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/btcpipe/btcpipe/metrics"
)

func init() {
	register("healthcheck", "[readyz|healthz]",
		"exit 0 if the running btcpipe's /readyz (default) or /healthz answers 200, else 1 (for a container HEALTHCHECK)",
		func() healthcheckSettings {
			return healthcheckSettings{Config: defaultConfig(), HealthcheckConfig: HealthcheckConfig{Timeout: defaultHealthcheckTimeout}}
		},
		runHealthcheck)
}

// defaultHealthcheckTimeout is how long healthcheck waits by default.
const defaultHealthcheckTimeout = 3 * time.Second

// healthcheckSettings are what `btcpipe healthcheck` reads.
type healthcheckSettings struct {
	Config
	HealthcheckConfig
	MetricsConfig
}

func (s *healthcheckSettings) validate() error {
	for _, v := range []func() error{s.Config.validate, s.HealthcheckConfig.validate, s.MetricsConfig.validate} {
		if err := v(); err != nil {
			return err
		}
	}
	return nil
}

// HealthcheckConfig is the healthcheck command's own section.
type HealthcheckConfig struct {
	URL     string        `envconfig:"HEALTHCHECK_URL" desc:"base URL of the btcpipe to check, like http://127.0.0.1:9090; empty: derived from BTCPIPE_METRICS_ADDR"`
	Timeout time.Duration `envconfig:"HEALTHCHECK_TIMEOUT" desc:"how long healthcheck waits for an answer"`
}

func (c *HealthcheckConfig) validate() error {
	if c.Timeout <= 0 {
		return fmt.Errorf("%s_HEALTHCHECK_TIMEOUT: must be a positive duration, like 3s", envPrefix)
	}
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%s_HEALTHCHECK_URL: want http://host:port, not %q", envPrefix, c.URL)
		}
	}
	return nil
}

// healthcheckBase returns the base URL to query: BTCPIPE_HEALTHCHECK_URL,
// or http:// and BTCPIPE_METRICS_ADDR with an unspecified or empty host
// replaced by loopback (a server listening on ":9090" answers on
// 127.0.0.1:9090).
func healthcheckBase(c HealthcheckConfig, m MetricsConfig) (string, error) {
	if c.URL != "" {
		return strings.TrimRight(c.URL, "/"), nil
	}
	if m.Addr == "" {
		return "", fmt.Errorf("neither %[1]s_HEALTHCHECK_URL nor %[1]s_METRICS_ADDR is set, so there is nothing to check", envPrefix)
	}
	host, port, err := net.SplitHostPort(m.Addr)
	if err != nil {
		return "", err
	}
	if p, _ := splitListenAddr(m.Addr); p == 0 {
		return "", fmt.Errorf("%s_METRICS_ADDR=%s has port 0: set %s_HEALTHCHECK_URL", envPrefix, m.Addr, envPrefix)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::", "[::]":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

// runHealthcheck asks the running btcpipe's /readyz (or, with the argument
// healthz, /healthz) and exits 0 on 200, 1 on any other answer or none, 2
// on bad usage. It prints one line: to stdout when healthy, else stderr.
func runHealthcheck(ctx context.Context, e *env, s *healthcheckSettings, args []string) int {
	path := metrics.PathReadyz
	switch {
	case len(args) == 0 || (len(args) == 1 && strings.TrimPrefix(args[0], "/") == "readyz"):
	case len(args) == 1 && strings.TrimPrefix(args[0], "/") == "healthz":
		path = metrics.PathHealthz
	default:
		fmt.Fprintf(e.stderr, "btcpipe: usage: btcpipe healthcheck [readyz|healthz]\n")
		return exitUsage
	}
	base, err := healthcheckBase(s.HealthcheckConfig, s.MetricsConfig)
	if err == nil {
		return healthcheck(ctx, e, base+path, s.Timeout)
	}
	fmt.Fprintf(e.stderr, "btcpipe: healthcheck: %v\n", err)
	return exitUsage
}

func healthcheck(ctx context.Context, e *env, target string, timeout time.Duration) int {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// No proxy from the environment: the target is (nearly always) our
	// own loopback listener.
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		fmt.Fprintf(e.stderr, "btcpipe: healthcheck: %v\n", err)
		return exitUsage
	}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(e.stderr, "btcpipe: healthcheck: %s: %v\n", target, err)
		return exitFailed
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	answer := strings.TrimSpace(string(body))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(e.stderr, "btcpipe: healthcheck: %s: %s %s\n", target, resp.Status, answer)
		return exitFailed
	}
	fmt.Fprintf(e.stdout, "%s: %s\n", target, answer)
	return exitOK
}
