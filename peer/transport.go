package peer

import (
	"context"
	"fmt"
	"net/netip"
	"sync"

	"github.com/sirupsen/logrus"

	"github.com/btcpipe/btcpipe/bip324"
	"github.com/btcpipe/btcpipe/pipeline"
	"github.com/btcpipe/btcpipe/wire"
)

// Transport policies of a Dialer (BTCPIPE_TRANSPORT).
const (
	// TransportV1 dials the original cleartext transport only.
	TransportV1 = pipeline.TransportV1
	// TransportV2 dials BIP324 only.
	TransportV2 = pipeline.TransportV2
	// TransportAuto tries BIP324 and falls back to v1 the way Bitcoin
	// Core does for its outbound connections: when the peer closes the
	// connection during the v2 handshake before sending a byte, or answers
	// with v1 bytes (bip324.FallBackToV1), Connect reconnects once with v1
	// and remembers, in Dialer.KnownV1, that the address speaks v1.
	TransportAuto = "auto"
	// DefaultTransport is the policy of BTCPIPE_TRANSPORT when unset.
	DefaultTransport = TransportAuto
)

// Transports lists the valid policies.
var Transports = []string{TransportV1, TransportV2, TransportAuto}

// ValidTransport reports whether t is a transport policy ("" counts: the
// pipeline's own transport).
func ValidTransport(t string) error {
	switch t {
	case "", TransportV1, TransportV2, TransportAuto:
		return nil
	}
	return fmt.Errorf("unknown transport %q (have v1, v2, auto)", t)
}

// AddrSet is a set of addresses, safe for concurrent use: the addresses a
// process has found to speak v1 only. The zero value is empty and ready.
type AddrSet struct {
	mu sync.Mutex
	m  map[netip.AddrPort]struct{}
}

// Add adds a.
func (s *AddrSet) Add(a netip.AddrPort) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[netip.AddrPort]struct{}{}
	}
	s.m[a] = struct{}{}
}

// Has reports whether a was added.
func (s *AddrSet) Has(a netip.AddrPort) bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[a]
	return ok
}

// Len returns the number of addresses.
func (s *AddrSet) Len() int {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// Connect dials addr, runs a Session over the pipeline until it ends (a
// stage fails, the peer goes away, or ctx ends) and reports the outcome.
// log (nil: discarded) is the connection's logger, usually carrying a peer
// field. The connection is closed when Connect returns.
func (d *Dialer) Connect(ctx context.Context, addr netip.AddrPort, log *logrus.Entry, hooks ConnectHooks) Outcome {
	return d.ConnectTo(ctx, wire.NetAddrV2FromAddrPort(addr, 0, 0), log, hooks)
}

// ConnectTo is Connect for a peer on any BIP155 network: a Tor v3 or I2P
// peer goes through Reach (a DialError wrapping ErrNoReach without it). Our
// version's addr_recv carries the peer's address only when it is an IP
// address; for the others it is zero, as Bitcoin Core sends.
func (d *Dialer) ConnectTo(ctx context.Context, peer wire.NetAddrV2, log *logrus.Entry, hooks ConnectHooks) Outcome {
	return d.connectNamed(ctx, peer, peer.String(), log, hooks)
}

// connectNamed is ConnectTo with the peer's name for logs and errors. The
// transport follows d.Transport: with TransportAuto, addresses in
// d.KnownV1 and those the caller knows not to advertise NODE_P2P_V2
// (hooks.NoV2) are dialled with v1 at once; the others with v2, and again
// once with v1 if the v2 handshake says the peer speaks v1 only. The
// outcome is then the v1 connection's (FellBack set; the bytes of both
// counted); hooks.Connected is called for the first connection only.
// KnownV1 remembers IP peers (Tor and I2P ones are tried with v2 each time).
func (d *Dialer) connectNamed(ctx context.Context, peer wire.NetAddrV2, name string, log *logrus.Entry, hooks ConnectHooks) Outcome {
	if log == nil {
		log = discardLog()
	}
	switch d.Transport {
	case "":
		return d.connect(ctx, peer, name, log, hooks, d.Pipeline.Transport)
	case TransportAuto:
	default:
		return d.connect(ctx, peer, name, log, hooks, d.Transport)
	}
	addr, isIP := peer.AddrPort()
	if hooks.NoV2 || (isIP && d.KnownV1.Has(addr)) {
		return d.connect(ctx, peer, name, log, hooks, TransportV1)
	}
	first := d.connect(ctx, peer, name, log, hooks, TransportV2)
	if !first.Connected || ctx.Err() != nil || !bip324.FallBackToV1(first.Err) {
		return first
	}
	if d.KnownV1 != nil && isIP {
		d.KnownV1.Add(addr)
	}
	log.WithError(first.Err).WithField("transport", TransportV1).Info("peer does not speak v2: reconnecting with v1")
	hooks.Connected = nil
	out := d.connect(ctx, peer, name, log, hooks, TransportV1)
	out.FellBack = true
	out.ConnectLatency = first.ConnectLatency
	out.BytesIn += first.BytesIn
	out.BytesOut += first.BytesOut
	return out
}

// ConfigFor returns cfg for a connection of an auto Dialer with pipeline
// transport t (v1 or v2): cfg with Transport t and without a stage override
// that does not speak t's wire format (BTCPIPE_FRAMER=copy applies to the
// v1 connections of an auto Dialer, not to its v2 ones). Under an explicit
// v1 or v2 policy an override of the other format is an error instead. A
// configuration check can Validate the result for each of TransportsOf.
func ConfigFor(cfg pipeline.Config, t string) pipeline.Config {
	cfg.Transport = t
	st := cfg.Stages
	if st == nil {
		st = pipeline.DefaultStages
	}
	tr, err := st.Transports.Get(t)
	if err != nil {
		return cfg // Validate reports it
	}
	if im, err := st.Framers.Get(cfg.Framer); err == nil && im.Wire != "" && im.Wire != tr.Wire {
		cfg.Framer = ""
	}
	if im, err := st.Verifiers.Get(cfg.Verifier); err == nil && im.Wire != "" && im.Wire != tr.Wire {
		cfg.Verifier = ""
	}
	if im, err := st.Writers.Get(cfg.Writer); err == nil && im.Wire != "" && im.Wire != tr.Wire {
		cfg.Writer = ""
	}
	return cfg
}

// TransportsOf returns the pipeline transports the policy t may dial with:
// v1 and v2 for auto, t itself otherwise (empty: none of its own).
func TransportsOf(t string) []string {
	switch t {
	case "":
		return nil
	case TransportAuto:
		return []string{TransportV2, TransportV1}
	}
	return []string{t}
}
