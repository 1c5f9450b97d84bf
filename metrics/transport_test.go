package metrics_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/btcpipe/btcpipe/bip324"
	"github.com/btcpipe/btcpipe/metrics"
	"github.com/btcpipe/btcpipe/peer"
	"github.com/btcpipe/btcpipe/pipeline"
	"github.com/btcpipe/btcpipe/stages"
	"github.com/btcpipe/btcpipe/wire"
)

// TestTransportLabels: the observer of a v2 connection counts the bytes of
// its packets under transport="v2", a v1 connection's frames under "v1",
// and handshakes are counted by Info.Transport.
func TestTransportLabels(t *testing.T) {
	m := metrics.New()
	obs := pipeline.Observers{m.Observer()}
	v1 := obs.ForTransport("v1")
	v2 := obs.ForTransport("v2")
	f := wire.Frame{Payload: make([]byte, 8)}
	copy(f.Command[:], wire.CmdPing)
	v1.FrameIn(&f)                              // 24 + 8
	v2.FrameIn(&f)                              // 20 + 1 + 8
	v2.FrameOut(wire.CmdPing, make([]byte, 32)) // the v1 layout: 20 + 1 + 8 on the wire
	v1.FrameOut(wire.CmdPing, make([]byte, 32))
	m.ObserveHandshake(peer.Info{Transport: "v2"})
	m.ObserveHandshake(peer.Info{Transport: "v2"})
	m.ObserveHandshake(peer.Info{Transport: "v1"})
	var _ stages.TransportObserver = obs
	want := `
# HELP btcpipe_transport_bytes_total Bytes of the messages received and sent, by transport, as on the wire: the 24-byte header (v1), or the length, header byte, message type and tag (v2).
# TYPE btcpipe_transport_bytes_total counter
btcpipe_transport_bytes_total{direction="in",transport="v1"} 32
btcpipe_transport_bytes_total{direction="in",transport="v2"} ` + strconv.Itoa(bip324.PacketLen(9)) + `
btcpipe_transport_bytes_total{direction="out",transport="v1"} 32
btcpipe_transport_bytes_total{direction="out",transport="v2"} 29
# HELP btcpipe_transport_handshakes_total Connections whose version handshake completed, by transport (v1: cleartext, v2: BIP324).
# TYPE btcpipe_transport_handshakes_total counter
btcpipe_transport_handshakes_total{transport="v1"} 1
btcpipe_transport_handshakes_total{transport="v2"} 2
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), "btcpipe_transport_bytes_total", "btcpipe_transport_handshakes_total"); err != nil {
		t.Error(err)
	}
}
