// Command demo shows btcpipe talking to a real btcd on loopback; `make demo`
// runs it.
//
// It starts btcd v0.26.2 on regtest on a free 127.0.0.1 port, with a fresh
// temporary datadir and the safe flags of internal/btcdtest (--connect to a
// closed loopback port, no DNS seeds, no RPC), teaches it routable addresses
// from a first connection, and then runs `btcpipe node` against it with
//
//	BTCPIPE_NETWORK=regtest BTCPIPE_PEER=127.0.0.1:PORT BTCPIPE_PING_INTERVAL=5s
//
// added to its own environment (so BTCPIPE_LOG_LEVEL=debug, for one, passes
// through; BTCPIPE_PING_INTERVAL only when not set already). btcpipe's
// output goes straight to the terminal. After DEMO_DURATION (default 15s), or
// on Ctrl-C or SIGTERM, it sends btcpipe SIGTERM (SIGKILL 10 s later), stops
// btcd, removes the temporary directories and exits with btcpipe's status.
//
// Usage:
//
//	go run ./internal/demo [-btcd bin/btcd] [-btcpipe bin/btcpipe] [-addrs 400] [-duration 15s]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/btcpipe/btcpipe/internal/btcdtest"
)

const (
	// termTimeout is how long btcpipe has to exit after SIGTERM.
	termTimeout = 10 * time.Second

	// seed makes the seeded addresses the same on every run.
	seed = 1
)

// config is what the flags and the environment choose.
type config struct {
	btcd, btcpipe string
	addrs         int
	duration      time.Duration
}

func main() {
	os.Exit(run())
}

// say prints one line of the demo's own commentary.
func say(format string, a ...any) {
	fmt.Fprintf(os.Stdout, "demo: "+format+"\n", a...)
}

func parseConfig() (config, error) {
	cfg := config{}
	dur, err := envDuration("DEMO_DURATION", 15*time.Second)
	if err != nil {
		return cfg, err
	}
	flag.StringVar(&cfg.btcd, "btcd", envOr(btcdtest.EnvBinary, "bin/btcd"), "path of btcd v0.26.2 (env "+btcdtest.EnvBinary+")")
	flag.StringVar(&cfg.btcpipe, "btcpipe", envOr("BTCPIPE_BIN", "bin/btcpipe"), "path of the btcpipe binary (env BTCPIPE_BIN)")
	flag.IntVar(&cfg.addrs, "addrs", 400, "how many routable addresses to teach btcd (at most 800 are all kept)")
	flag.DurationVar(&cfg.duration, "duration", dur, "how long to run btcpipe (env DEMO_DURATION)")
	flag.Parse()
	if flag.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	if cfg.addrs < 0 || cfg.addrs > btcdtest.MaxRoutableAddrs {
		return cfg, fmt.Errorf("-addrs %d out of range 0..%d", cfg.addrs, btcdtest.MaxRoutableAddrs)
	}
	if cfg.duration <= 0 {
		return cfg, fmt.Errorf("duration %v must be positive", cfg.duration)
	}
	for _, p := range []struct{ path, hint string }{
		{cfg.btcd, "make btcd"},
		{cfg.btcpipe, "make build"},
	} {
		if _, err := os.Stat(p.path); err != nil {
			return cfg, fmt.Errorf("%w (build it with `%s`)", err, p.hint)
		}
	}
	return cfg, nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// envDuration reads a duration such as "15s" or a plain number of seconds.
func envDuration(name string, def time.Duration) (time.Duration, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	if secs, err := strconv.Atoi(v); err == nil {
		return time.Duration(secs) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s=%q: want a duration like 15s", name, v)
	}
	return d, nil
}

func run() int {
	cfg, err := parseConfig()
	if err != nil {
		say("%v", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	begin := time.Now()
	node, err := btcdtest.StartNode(startCtx, btcdtest.Options{
		Network:   btcdtest.Regtest,
		Binary:    cfg.btcd,
		ExtraArgs: []string{"--debuglevel=AMGR=trace"},
	})
	if err != nil {
		say("%v", err)
		return 1
	}
	defer func() {
		if err := node.Close(); err != nil {
			say("stopping btcd: %v", err)
		}
	}()
	say("btcd %s (pid %d) is up on %s (regtest, loopback only) after %v; its log: %s",
		btcdtest.BtcdVersion, node.Pid(), node.Addr, time.Since(begin).Round(time.Millisecond), node.LogFile())

	addrs := btcdtest.RoutableAddrs(cfg.addrs, seed)
	if err := btcdtest.SeedAddrs(startCtx, node.Addr, btcdtest.Regtest, addrs); err != nil {
		say("%v", err)
		return 1
	}
	stored, err := node.AddrCount()
	if err != nil {
		say("%v", err)
		return 1
	}
	say("taught btcd %d routable addresses (one per /16, port %d) from a first connection; it stored %d",
		len(addrs), btcdtest.SeedPort, stored)
	say("btcd answers one getaddr per connection with 23%% of what it knows: expect %d addresses (%d × 23 / 100, rounded down)",
		stored*23/100, stored)
	say("running %s node for %v with BTCPIPE_PEER=%s (Ctrl-C stops early)", cfg.btcpipe, cfg.duration, node.Addr)
	say("---")

	code := runBtcpipe(ctx, cfg, node)

	say("---")
	if err := node.Stop(); err != nil {
		say("stopping btcd: %v", err)
	}
	say("btcd's view of its peers (the %s ones are the readiness probe and the seeding connection):", btcdtest.UserAgent)
	for line := range strings.Lines(node.Log()) {
		if strings.Contains(line, "New valid peer") || strings.Contains(line, "Lost peer") {
			say("  %s", strings.TrimSpace(line))
		}
	}
	return code
}

// runBtcpipe runs btcpipe until it exits, the duration passes or ctx ends,
// and returns the exit code the demo should end with.
func runBtcpipe(ctx context.Context, cfg config, node *btcdtest.Node) int {
	cmd := exec.Command(cfg.btcpipe, "node")
	cmd.Env = append(os.Environ(),
		"BTCPIPE_NETWORK=regtest",
		"BTCPIPE_PEER="+node.Addr.String(),
	)
	if os.Getenv("BTCPIPE_PING_INTERVAL") == "" {
		cmd.Env = append(cmd.Env, "BTCPIPE_PING_INTERVAL=5s")
	}
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		say("starting btcpipe: %v", err)
		return 1
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	timer := time.NewTimer(cfg.duration)
	defer timer.Stop()
	var err error
	select {
	case err = <-done:
		say("btcpipe exited by itself before the %v were up", cfg.duration)
		return exitCode(err)
	case <-timer.C:
		say("%v have passed: sending btcpipe SIGTERM", cfg.duration)
	case <-ctx.Done():
		say("interrupted: sending btcpipe SIGTERM")
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err = <-done:
	case <-time.After(termTimeout):
		say("btcpipe ignored SIGTERM for %v: killing it", termTimeout)
		cmd.Process.Kill()
		<-done
		return 1
	}
	return exitCode(err)
}

// exitCode reports how btcpipe ended and turns it into the demo's exit code.
func exitCode(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		say("btcpipe exited cleanly")
		return 0
	case errors.As(err, &ee) && ee.Exited():
		say("btcpipe exited with status %d", ee.ExitCode())
		return ee.ExitCode()
	default:
		say("btcpipe failed: %v", err)
		return 1
	}
}
