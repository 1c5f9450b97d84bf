// Command btcpipe is a Bitcoin peer-to-peer node built as a pipeline of
// goroutine stages. Every setting comes from the environment (BTCPIPE_*);
// run "btcpipe help" for the list.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/sirupsen/logrus"

	"github.com/btcpipe/btcpipe/peer"
	"github.com/btcpipe/btcpipe/pipeline"
	"github.com/btcpipe/btcpipe/stages"
	"github.com/btcpipe/btcpipe/wire"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit statuses.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "node"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "help", "-h", "-help", "--help":
		printUsage(stdout)
		return exitOK
	case "node", "decode":
	default:
		fmt.Fprintf(stderr, "btcpipe: unknown command %q (try btcpipe help)\n", cmd)
		return exitUsage
	}
	cfg, err := loadConfig()
	if err != nil {
		fmt.Fprintf(stderr, "btcpipe: bad configuration: %v\n", err)
		return exitUsage
	}
	log := newLogger(cfg, stdout)

	// The first SIGINT or SIGTERM cancels ctx and starts a graceful stop;
	// stop() then restores the default handling, so a second one kills.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
	}()

	if cmd == "decode" {
		return runDecode(ctx, cfg, args, stdout, stderr)
	}
	if len(args) > 0 {
		fmt.Fprintf(stderr, "btcpipe: node takes no arguments (settings come from BTCPIPE_* variables; see btcpipe help)\n")
		return exitUsage
	}
	return runNode(ctx, cfg, log)
}

func newLogger(cfg Config, out io.Writer) *logrus.Entry {
	l := logrus.New()
	l.SetOutput(out)
	level, _ := logrus.ParseLevel(cfg.LogLevel) // validated
	l.SetLevel(level)
	logrus.ErrorKey = "err"
	if cfg.LogFormat == "json" {
		l.SetFormatter(&logrus.JSONFormatter{TimestampFormat: "2006-01-02T15:04:05.000Z07:00"})
	} else {
		l.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, TimestampFormat: "15:04:05.000"})
	}
	return logrus.NewEntry(l)
}

func stagesOptions(c *Config) stages.Options {
	workers := c.Workers
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	return stages.Options{ReadSize: c.ReadBuffer, Workers: workers, WriteTimeout: c.WriteTimeout}
}

func nodeConfig(cfg Config) peer.NodeConfig {
	network, _ := wire.NetworkByName(cfg.Network) // validated
	s := peer.DefaultConfig(network)
	if cfg.UserAgent != "" {
		s.UserAgent = cfg.UserAgent
	}
	s.MinProtocol = cfg.MinProtocol
	s.SendAddrV2 = cfg.SendAddrV2
	s.HandshakeTimeout = cfg.HandshakeTimeout
	s.PingInterval = cfg.PingInterval
	s.PingTimeout = cfg.PingTimeout
	return peer.NodeConfig{
		Session: s,
		Peer:    cfg.Peer,
		Pipeline: pipeline.Config{
			Options:    stagesOptions(&cfg),
			QueueDepth: cfg.QueueDepth,
			Framer:     cfg.Framer,
			Verifier:   cfg.Verifier,
		},
		DialTimeout: cfg.DialTimeout,
		BackoffMin:  cfg.BackoffMin,
		BackoffMax:  cfg.BackoffMax,
		MaxAddrs:    cfg.MaxAddrs,
	}
}

func runNode(ctx context.Context, cfg Config, log *logrus.Entry) int {
	nc := nodeConfig(cfg)
	if cfg.Record != "" {
		f, err := os.OpenFile(cfg.Record, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			log.WithError(err).Error("cannot open the BTCPIPE_RECORD file")
			return exitFailed
		}
		defer f.Close()
		nc.Record = f
	}
	log.WithFields(logrus.Fields{
		"network": cfg.Network, "verifier": cfg.Verifier, "queue_depth": cfg.QueueDepth,
	}).Infof("btcpipe %s starting", peer.Version)
	node := peer.NewNode(nc, log)
	if err := node.Run(ctx); err != nil {
		log.WithError(err).Error("node stopped")
		return exitFailed
	}
	log.WithField("unique_peers", node.Book.Len()).Info("shut down")
	return exitOK
}

func runDecode(ctx context.Context, cfg Config, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "btcpipe: decode is not built yet")
	return exitFailed
}
