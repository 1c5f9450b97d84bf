package metrics

import (
	"bytes"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/btcpipe/btcpipe/bip324"
	"github.com/btcpipe/btcpipe/pipeline"
	"github.com/btcpipe/btcpipe/stages"
	"github.com/btcpipe/btcpipe/wire"
)

// Namespace prefixes every metric name.
const Namespace = "btcpipe"

// OtherCommand is the command label of every command not in
// wire.KnownCommands.
const OtherCommand = "other"

// Direction label values.
const (
	In  = "in"
	Out = "out"
)

// Queue stage label values: the channel each gauge measures, named after
// what it carries (see package pipeline).
var QueueStages = []string{"chunks", "framed", "verified", "outbound"}

// Histogram buckets, in seconds.
var (
	// ConnectBuckets and HandshakeBuckets span 1 ms to about 33 s.
	ConnectBuckets   = prometheus.ExponentialBuckets(0.001, 2, 16)
	HandshakeBuckets = prometheus.ExponentialBuckets(0.001, 2, 16)
	// PingBuckets span 100 µs to about 13 s.
	PingBuckets = prometheus.ExponentialBuckets(0.0001, 2, 18)
)

// Metrics are btcpipe's Prometheus metrics, in a registry of their own. The
// zero value is not usable; call New. Safe for concurrent use.
type Metrics struct {
	// Registry holds every metric below plus the Go and process
	// collectors. Register more collectors here, not in the global one.
	Registry *prometheus.Registry

	// Counter arrays are indexed by wire.CommandIndex; commands not in
	// the table are counted at index other.
	other          int
	frames         [2][]prometheus.Counter // [in, out][command]
	bytes          [2][]prometheus.Counter
	decodeFailures []prometheus.Counter
	skipped        []prometheus.Counter // by command: frames skipped unread

	checksumFailures prometheus.Counter
	unknownCommands  prometheus.Counter

	connect, handshake, pingRTT prometheus.Histogram

	peersReceived prometheus.Counter
	connections   prometheus.Counter
	disconnects   prometheus.Counter
	reconnects    prometheus.Counter
	connected     prometheus.Gauge

	// transports are the counters by transport label (v1, v2).
	transports map[string]*transportCounters

	mu        sync.Mutex
	pipelines map[*pipeline.Pipeline]int // tracked, with a count of Track calls
	funcs     map[string]func() float64  // set by SetFunc: ready, peers_unique

	// Crawl counts what a crawler does.
	Crawl *Crawl
}

// New returns metrics registered in a new registry, with the Go runtime and
// process collectors.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry:  reg,
		pipelines: map[*pipeline.Pipeline]int{},
		funcs:     map[string]func() float64{},
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	frames := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "frames_total",
		Help: "Frames cut from the stream (direction=in, counted before the checksum check) or written (direction=out), by command; commands wire does not know are command=\"other\".",
	}, []string{"command", "direction"})
	byteCount := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "bytes_total",
		Help: "Bytes of the frames counted by btcpipe_frames_total, 24-byte header included.",
	}, []string{"command", "direction"})
	decode := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "decode_failures_total",
		Help: "Payloads that did not decode, by command.",
	}, []string{"command"})
	commands := append(append([]string(nil), wire.KnownCommands...), OtherCommand)
	m.other = len(commands) - 1
	for d, dir := range []string{In, Out} {
		m.frames[d] = make([]prometheus.Counter, len(commands))
		m.bytes[d] = make([]prometheus.Counter, len(commands))
		for i, c := range commands {
			m.frames[d][i] = frames.WithLabelValues(c, dir)
			m.bytes[d][i] = byteCount.WithLabelValues(c, dir)
		}
	}
	m.decodeFailures = make([]prometheus.Counter, len(commands))
	for i, c := range commands {
		m.decodeFailures[i] = decode.WithLabelValues(c)
	}
	skipped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "frames_skipped_total",
		Help: "Frames of commands the session does not use (block, tx, …), skipped as their bytes arrived without being held or checked; also counted in btcpipe_frames_total.",
	}, []string{"command"})
	m.skipped = make([]prometheus.Counter, len(commands))
	for i, c := range commands {
		m.skipped[i] = skipped.WithLabelValues(c)
	}
	reg.MustRegister(skipped)

	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help})
	}
	histogram := func(name, help string, buckets []float64) prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: buckets})
	}
	m.checksumFailures = counter("checksum_failures_total", "Frames dropped because their checksum did not match.")
	m.unknownCommands = counter("unknown_commands_total", "Messages of a command the wire package does not know (ignored).")
	m.connect = histogram("connect_duration_seconds", "Time to open the TCP connection to a peer, for connections that went on to complete a handshake.", ConnectBuckets)
	m.handshake = histogram("handshake_duration_seconds", "Time from sending our version to a completed version/verack handshake.", HandshakeBuckets)
	m.pingRTT = histogram("ping_rtt_seconds", "Round trip from our ping to the peer's matching pong.", PingBuckets)
	m.peersReceived = counter("peers_received_total", "Peer addresses received in addr and addrv2 messages, duplicates included.")
	m.connections = counter("connections_total", "TCP connections opened to peers.")
	m.disconnects = counter("disconnects_total", "Connections to peers that ended.")
	m.reconnects = counter("reconnects_total", "Waits before reconnecting to the peer after a connection failed or ended.")
	m.connected = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "connected", Help: "Connections to peers open now."})
	m.transports = newTransportCounters(reg)
	reg.MustRegister(frames, byteCount, decode, m.checksumFailures, m.unknownCommands,
		m.connect, m.handshake, m.pingRTT, m.peersReceived, m.connections, m.disconnects, m.reconnects, m.connected)

	depth := prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", "queue_depth"),
		"Messages waiting in each stage's input channel (stage=chunks: read, not yet framed; framed: not yet verified; verified: not yet dispatched; outbound: not yet written), summed over open connections. A full queue is where back-pressure builds.",
		[]string{"stage"}, nil)
	capacity := prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", "queue_capacity"),
		"Capacity of the channels measured by btcpipe_queue_depth, summed over open connections.",
		[]string{"stage"}, nil)
	reg.MustRegister(&queueCollector{m: m, depth: depth, capacity: capacity})

	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "ready", Help: "1 while a handshake is complete on the node's current connection, else 0.",
	}, m.fn("ready")))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "peers_unique", Help: "Unique peer addresses in the node's address book.",
	}, m.fn("peers_unique")))

	m.Crawl = newCrawl(reg)
	return m
}

// fn returns a function reading the function SetFunc sets under name (0
// until it is set).
func (m *Metrics) fn(name string) func() float64 {
	return func() float64 {
		m.mu.Lock()
		f := m.funcs[name]
		m.mu.Unlock()
		if f == nil {
			return 0
		}
		return f()
	}
}

func (m *Metrics) setFunc(name string, f func() float64) {
	m.mu.Lock()
	m.funcs[name] = f
	m.mu.Unlock()
}

// command returns the counter index of the NUL-padded command c without
// allocating.
func (m *Metrics) command(c []byte) int {
	if n := bytes.IndexByte(c, 0); n >= 0 {
		c = c[:n]
	}
	if i, ok := wire.CommandIndex(string(c)); ok { // string(c) does not escape: no allocation
		return i
	}
	return m.other
}

func (m *Metrics) commandString(c string) int {
	if i, ok := wire.CommandIndex(c); ok {
		return i
	}
	return m.other
}

// Observer returns the stages.Observer that counts frames, bytes, checksum
// and decode failures and unknown commands into m. Add it to every
// connection's observers (peer.Node.Observer, or pipeline.Observers).
//
// It is a stages.TransportObserver: peer.Dialer asks it, per connection,
// for the observer of the connection's transport, which also counts
// btcpipe_transport_bytes_total.
func (m *Metrics) Observer() stages.Observer { return observer{m: m} }

type observer struct {
	m  *Metrics
	tr *transportCounters // nil: the transport is not known
}

// ForTransport returns the observer of a connection of transport name.
func (o observer) ForTransport(name string) stages.Observer {
	o.tr = o.m.transports[name]
	return o
}

func (o observer) FrameIn(f *wire.Frame) {
	i := o.m.command(f.Command[:])
	o.m.frames[0][i].Inc()
	n := float64(wire.HeaderSize + len(f.Payload))
	if o.tr != nil {
		if o.tr.v2 {
			n = float64(bip324.PacketLen(uint32(bip324.TypeLen(f.CommandName()) + len(f.Payload))))
		}
		o.tr.bytes[0].Add(n)
	}
	o.m.bytes[0][i].Add(n)
}

func (o observer) ChecksumFailed(*wire.Frame) { o.m.checksumFailures.Inc() }

// Skipped counts a frame nobody wanted: received (frames_total in) and
// skipped unread (frames_skipped_total).
func (o observer) Skipped(h *wire.Header) {
	i := o.m.command(h.Command[:])
	o.m.frames[0][i].Inc()
	o.m.bytes[0][i].Add(float64(wire.HeaderSize + int(h.Length)))
	o.m.skipped[i].Inc()
	if i == o.m.other {
		o.m.unknownCommands.Inc()
	}
}

func (o observer) Decoded(msg wire.Message) {
	if raw, ok := msg.(*wire.Raw); ok && o.m.commandString(raw.Cmd) == o.m.other {
		o.m.unknownCommands.Inc()
	}
}

func (o observer) DecodeFailed(f *wire.Frame, _ error) {
	o.m.decodeFailures[o.m.command(f.Command[:])].Inc()
}

func (o observer) FrameOut(cmd string, frame []byte) {
	i := o.m.commandString(cmd)
	o.m.frames[1][i].Inc()
	n := float64(len(frame))
	if o.tr != nil {
		if o.tr.v2 && len(frame) >= wire.HeaderSize { // the v2 writer passes the v1 layout
			n = float64(bip324.PacketLen(uint32(bip324.TypeLen(cmd) + len(frame) - wire.HeaderSize)))
		}
		o.tr.bytes[1].Add(n)
	}
	o.m.bytes[1][i].Add(n)
}

// TrackPipeline adds p's channels to btcpipe_queue_depth and
// btcpipe_queue_capacity until the returned function is called (call it once
// p.Run has returned). p may be tracked before Run starts: it counts from
// when its channels exist.
func (m *Metrics) TrackPipeline(p *pipeline.Pipeline) (untrack func()) {
	m.mu.Lock()
	m.pipelines[p]++
	m.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			m.mu.Lock()
			defer m.mu.Unlock()
			if m.pipelines[p]--; m.pipelines[p] <= 0 {
				delete(m.pipelines, p)
			}
		})
	}
}

// queueCollector reads the depth of every tracked pipeline's channels at
// scrape time.
type queueCollector struct {
	m               *Metrics
	depth, capacity *prometheus.Desc
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.depth
	ch <- c.capacity
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	var depth [4]int
	var capacity int
	c.m.mu.Lock()
	for p := range c.m.pipelines {
		q := p.Queues()
		if q == nil { // not running yet
			continue
		}
		depth[0] += q.Chunks()
		depth[1] += q.Framed()
		depth[2] += q.Verified()
		depth[3] += q.Outbound()
		capacity += q.Capacity
	}
	c.m.mu.Unlock()
	for i, stage := range QueueStages {
		ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(depth[i]), stage)
		ch <- prometheus.MustNewConstMetric(c.capacity, prometheus.GaugeValue, float64(capacity), stage)
	}
}
