package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/btcpipe/btcpipe/pipeline"
)

// Transports are the values of the transport label.
var Transports = []string{pipeline.TransportV1, pipeline.TransportV2}

// transportCounters are the counters of one transport label.
type transportCounters struct {
	v2         bool
	handshakes prometheus.Counter
	bytes      [2]prometheus.Counter // [in, out]
}

// newTransportCounters registers btcpipe_transport_handshakes_total and
// btcpipe_transport_bytes_total and returns their counters by transport.
func newTransportCounters(reg prometheus.Registerer) map[string]*transportCounters {
	hs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "transport_handshakes_total",
		Help: "Connections whose version handshake completed, by transport (v1: cleartext, v2: BIP324).",
	}, []string{"transport"})
	bytes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "transport_bytes_total",
		Help: "Bytes of the messages received and sent, by transport, as on the wire: the 24-byte header (v1), or the length, header byte, message type and tag (v2).",
	}, []string{"transport", "direction"})
	reg.MustRegister(hs, bytes)
	out := map[string]*transportCounters{}
	for _, t := range Transports {
		out[t] = &transportCounters{
			v2:         t == pipeline.TransportV2,
			handshakes: hs.WithLabelValues(t),
			bytes:      [2]prometheus.Counter{bytes.WithLabelValues(t, In), bytes.WithLabelValues(t, Out)},
		}
	}
	return out
}
