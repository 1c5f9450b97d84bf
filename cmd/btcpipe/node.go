package main

import (
	"context"
	"fmt"
	"os"

	"github.com/sirupsen/logrus"

	"github.com/btcpipe/btcpipe/internal/version"
	"github.com/btcpipe/btcpipe/netreach"
	"github.com/btcpipe/btcpipe/peer"
	"github.com/btcpipe/btcpipe/wire"
)

// nodeSettings are what `btcpipe node` reads.
type nodeSettings struct {
	Config
	MetricsConfig
}

func (s *nodeSettings) validate() error {
	if err := s.Config.validate(); err != nil {
		return err
	}
	return s.MetricsConfig.validate()
}

func init() {
	register("node", "",
		"connect to one peer, handshake, count the peers it knows, stay connected (the default)",
		func() nodeSettings { return nodeSettings{Config: defaultConfig()} },
		runNode)
}

// sessionConfig is the protocol configuration node and crawl share.
func sessionConfig(cfg *Config) peer.Config {
	network, _ := wire.NetworkByName(cfg.Network) // validated
	s := peer.DefaultConfig(network)
	if cfg.UserAgent != "" {
		s.UserAgent = cfg.UserAgent
	}
	s.MinProtocol = cfg.MinProtocol
	s.SendAddrV2 = cfg.SendAddrV2
	return s
}

// openAppend opens path for appending (creating it), logging why it cannot.
func openAppend(path, setting string, log *logrus.Entry) (*os.File, bool) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		log.WithError(err).Errorf("cannot open the %s_%s file", envPrefix, setting)
		return nil, false
	}
	return f, true
}

func nodeConfig(cfg *Config) (peer.NodeConfig, *netreach.Dialer, error) {
	s := sessionConfig(cfg)
	s.HandshakeTimeout = cfg.HandshakeTimeout
	s.PingInterval = cfg.PingInterval
	s.PingTimeout = cfg.PingTimeout
	reach, err := netreach.New(reachConfig(cfg))
	if err != nil {
		return peer.NodeConfig{}, nil, err
	}
	nc := peer.NodeConfig{
		Session:     s,
		Peer:        cfg.Peer,
		Pipeline:    pipelineConfig(cfg),
		Transport:   cfg.Transport,
		DialTimeout: cfg.DialTimeout,
		BackoffMin:  cfg.BackoffMin,
		BackoffMax:  cfg.BackoffMax,
		MaxAddrs:    cfg.MaxAddrs,
		Reach:       reach.Dial,
	}
	if cfg.Proxy != "" {
		nc.ReachName = reach.DialName // a host name goes to the proxy unresolved
	}
	return nc, reach, nil
}

// runNode is `btcpipe node`. It exits 1, without retrying, when the
// connection failed in a way no retry can mend (peer.Permanent): the node
// says so once.
func runNode(ctx context.Context, e *env, s *nodeSettings, args []string) int {
	if len(args) > 0 {
		fmt.Fprintf(e.stderr, "btcpipe: node takes no arguments (settings come from BTCPIPE_* variables; see btcpipe help)\n")
		return exitUsage
	}
	cfg, log := &s.Config, e.log
	nc, reach, err := nodeConfig(cfg)
	if err != nil {
		log.WithError(err).Error("bad network configuration")
		return exitUsage
	}
	defer reach.Close()
	if cfg.Record != "" {
		f, ok := openAppend(cfg.Record, "RECORD", log)
		if !ok {
			return exitFailed
		}
		defer f.Close()
		nc.Record = f
		if nc.Transport != peer.TransportV1 {
			// A recording of BIP324 packets cannot be replayed: btcpipe
			// decode has no keys. Record the cleartext transport.
			log.WithField("transport", peer.TransportV1).Warnf("BTCPIPE_RECORD is set: using transport v1 instead of %s, so that the recording can be decoded", nc.Transport)
			nc.Transport = peer.TransportV1
		}
	}
	names := pipelineConfig(cfg).Names()
	log.WithFields(logrus.Fields{
		"network": cfg.Network, "transport": nc.Transport, "reader": names.Reader,
		"framer": names.Framer, "verifier": names.Verifier, "dispatcher": names.Dispatcher, "writer": names.Writer,
		"queue_depth": cfg.QueueDepth,
	}).Infof("btcpipe %s starting", version.Version)
	node := peer.NewNode(nc, log)
	waitMetrics, err := startNodeMetrics(ctx, e, s.MetricsConfig, node)
	if err != nil {
		log.WithError(err).Error("cannot serve metrics")
		return exitFailed
	}
	defer waitMetrics()
	if err := node.Run(ctx); err != nil {
		log.WithError(err).Error("node stopped: connecting again cannot succeed")
		return exitFailed
	}
	log.WithField("unique_peers", node.Book.Len()).Info("shut down")
	return exitOK
}
