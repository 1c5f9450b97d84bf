package metrics

import (
	"net/netip"
	"sync"
	"time"

	"github.com/btcpipe/btcpipe/peer"
	"github.com/btcpipe/btcpipe/pipeline"
	"github.com/btcpipe/btcpipe/stages"
	"github.com/btcpipe/btcpipe/wire"
)

// InstrumentNode makes n report to m: its stage events (n.Observer), its
// handshakes, pongs, addresses, connections and reconnects (n.Hooks, calling
// any hooks already set as well), the depth of its pipeline's channels, its
// readiness (btcpipe_ready) and the size of its address book. Call it before
// n.Run.
func (m *Metrics) InstrumentNode(n *peer.Node) {
	if n.Observer != nil {
		n.Observer = pipeline.Observers{n.Observer, m.Observer()}
	} else {
		n.Observer = m.Observer()
	}
	n.Hooks = m.NodeHooks(n.Hooks)
	m.setFunc("ready", func() float64 { return bool01(n.Ready()) })
	m.setFunc("peers_unique", func() float64 { return float64(n.Book.Len()) })
}

// NodeHooks returns hooks that count into m and then call next's. The
// pipeline hook tracks each connection's pipeline until it disconnects; the
// hooks assume one connection at a time, as a peer.Node makes.
func (m *Metrics) NodeHooks(next peer.NodeHooks) peer.NodeHooks {
	var (
		mu      sync.Mutex
		untrack func()
	)
	h := next
	h.Handshake = func(info peer.Info) {
		m.ObserveHandshake(info)
		if next.Handshake != nil {
			next.Handshake(info)
		}
	}
	h.Pong = func(rtt time.Duration) {
		m.ObservePong(rtt)
		if next.Pong != nil {
			next.Pong(rtt)
		}
	}
	h.Addrs = func(list []wire.NetAddrV2) {
		m.peersReceived.Add(float64(len(list)))
		if next.Addrs != nil {
			next.Addrs(list)
		}
	}
	h.Connected = func(addr netip.AddrPort) {
		m.connections.Inc()
		m.connected.Inc()
		if next.Connected != nil {
			next.Connected(addr)
		}
	}
	h.Disconnected = func(addr netip.AddrPort, err error) {
		m.disconnects.Inc()
		m.connected.Dec()
		mu.Lock()
		if untrack != nil {
			untrack()
			untrack = nil
		}
		mu.Unlock()
		if next.Disconnected != nil {
			next.Disconnected(addr, err)
		}
	}
	h.Reconnect = func(attempt int, wait time.Duration) {
		m.reconnects.Inc()
		if next.Reconnect != nil {
			next.Reconnect(attempt, wait)
		}
	}
	h.Pipeline = func(p *pipeline.Pipeline) {
		u := m.TrackPipeline(p)
		mu.Lock()
		if untrack != nil {
			untrack()
		}
		untrack = u
		mu.Unlock()
		if next.Pipeline != nil {
			next.Pipeline(p)
		}
	}
	return h
}

// ObserveHandshake records a completed handshake's connect and handshake
// latencies.
func (m *Metrics) ObserveHandshake(info peer.Info) {
	if info.ConnectLatency > 0 {
		m.connect.Observe(info.ConnectLatency.Seconds())
	}
	m.handshake.Observe(info.HandshakeLatency.Seconds())
	if t := m.transports[info.Transport]; t != nil {
		t.handshakes.Inc()
	}
}

// ObservePong records a ping round trip.
func (m *Metrics) ObservePong(rtt time.Duration) { m.pingRTT.Observe(rtt.Seconds()) }

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

var _ stages.Observer = observer{}
