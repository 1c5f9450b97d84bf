package crawler

import (
	"strconv"
	"time"
)

// Outcome is what came of one address: Reachable, a failure class, or
// NotDialled.
type Outcome string

// Outcomes. Every node record carries exactly one.
const (
	// Reachable: the handshake completed and the session ended on our
	// terms (a quiet period after addresses, the getaddr timeout, the
	// per-node address cap) or the peer closed after sending addresses.
	Reachable Outcome = "reachable"
	// Refused: the TCP connect was refused (ECONNREFUSED).
	Refused Outcome = "refused"
	// Timeout: the TCP connect or the version handshake did not finish in
	// time.
	Timeout Outcome = "timeout"
	// Reset: the peer reset the connection (ECONNRESET, EPIPE) during the
	// connect or before the handshake completed.
	Reset Outcome = "reset"
	// Unreachable: the connect failed for any other reason (no route to
	// host or network, address not available, …).
	Unreachable Outcome = "unreachable"
	// HandshakeFailed: the connection ended before the handshake completed
	// (closed, or the peer sent something that is not the protocol: a bad
	// magic, a malformed version).
	HandshakeFailed Outcome = "handshake_failed"
	// ClosedAfterVerack: the handshake completed but the connection ended
	// before the peer sent any address.
	ClosedAfterVerack Outcome = "closed_after_verack"
	// Self: the peer's version carried one of our own nonces.
	Self Outcome = "self"
	// VersionTooOld: the peer's protocol version is below the minimum.
	VersionTooOld Outcome = "version_too_old"
	// NotDialled: the address was recorded but deliberately not dialled
	// (outside the allowlist, a bogon, Tor/I2P/CJDNS, port 0); Reason says
	// why.
	NotDialled Outcome = "not_dialled"
)

// Outcomes lists every outcome, reachable first and not_dialled last.
var Outcomes = []Outcome{
	Reachable, Refused, Timeout, Reset, Unreachable, HandshakeFailed,
	ClosedAfterVerack, Self, VersionTooOld, NotDialled,
}

// Failed reports whether o is a failure class (neither Reachable nor
// NotDialled).
func (o Outcome) Failed() bool { return o != Reachable && o != NotDialled }

// Why a reachable node's session ended (Handshake.Ended).
const (
	EndedQuiet          = "quiet"           // no new addr message for the quiet period
	EndedGetAddrTimeout = "getaddr_timeout" // the getaddr timeout after the handshake
	EndedAddrCap        = "addr_cap"        // the per-node address cap was reached
	EndedPeerClosed     = "peer_closed"     // the peer closed after sending addresses
	EndedInterrupted    = "interrupted"     // the crawl was stopped (SIGTERM)
)

// RecordType and SummaryType are the values of the "type" field of the two
// kinds of JSON line the crawler writes.
const (
	RecordType  = "node"
	SummaryType = "summary"
)

// Record is one node line: what the crawl learned about one address. It is
// written as one JSON object on one line, {"type":"node",...}.
//
// Fields of the embedded *Handshake are present only when the peer sent its
// version message (always for Reachable and ClosedAfterVerack; also for
// VersionTooOld and Self, showing what the peer announced).
type Record struct {
	Type string `json:"type"` // always RecordType, "node"
	// Addr is host:port: a.b.c.d:port, [v6]:port, or name.onion:port /
	// name.b32.i2p:port.
	Addr string `json:"addr"`
	// Network is the address's network: ipv4, ipv6, torv3, i2p or cjdns.
	Network string `json:"network"`
	// Source says who told us about the address: "seed" (BTCPIPE_SEEDS),
	// "dns:HOST" (resolved from a seed host name or a DNS seed), or the
	// Addr of the node whose addr/addrv2 reply first carried it.
	Source  string  `json:"source"`
	Outcome Outcome `json:"outcome"`
	// Error is the error that ended a failed attempt (at most 256 bytes).
	Error string `json:"error,omitempty"`
	// Reason says why a NotDialled address was not dialled.
	Reason string `json:"reason,omitempty"`
	// Time is when the attempt ended, or when a NotDialled address was
	// learned (UTC).
	Time time.Time `json:"time"`
	// ConnectMs is the TCP connect latency in milliseconds, for every node
	// whose connect succeeded.
	ConnectMs float64 `json:"connect_ms,omitempty"`
	// Transport is the transport the last connection spoke, "v1" or "v2"
	// (BIP324), for every node whose connect succeeded.
	Transport string `json:"transport,omitempty"`

	*Handshake
}

// Handshake is what a peer's version message said, and what its session
// yielded. Its fields appear at the top level of a Record's JSON.
type Handshake struct {
	Protocol int32 `json:"protocol"`
	// Services are the service bits by name (wire.ServiceFlag.Names),
	// ServiceBits the raw value.
	Services    []string `json:"services"`
	ServiceBits uint64   `json:"service_bits"`
	UserAgent   string   `json:"user_agent"`
	StartHeight int32    `json:"start_height"`
	Relay       bool     `json:"relay"`
	// HandshakeMs is the time from our version to the completed handshake,
	// in milliseconds; absent when the handshake did not complete.
	HandshakeMs float64 `json:"handshake_ms,omitempty"`
	// AddrsReturned counts the address entries the peer sent (every
	// addr/addrv2 message, duplicates included); AddrsNew how many of them
	// were new to the crawl.
	AddrsReturned int `json:"addrs_returned"`
	AddrsNew      int `json:"addrs_new"`
	// Ended says why a reachable node's session ended (EndedQuiet, …).
	Ended string `json:"ended,omitempty"`
}

// Summary is the final line, {"type":"summary",...}: counts over every
// record of the crawl. Add builds it from records, so a consumer can rebuild
// it from the node lines alone (for a crawl killed before its summary).
type Summary struct {
	Type     string    `json:"type"`    // always SummaryType, "summary"
	Network  string    `json:"network"` // the Bitcoin network crawled
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Seconds  float64   `json:"duration_s"`
	// Interrupted: the crawl was stopped (SIGTERM, SIGINT) before nothing
	// was left to dial.
	Interrupted bool `json:"interrupted"`

	// Discovered counts the unique addresses known (seeds included).
	Discovered int `json:"discovered"`
	// Tried counts the connection attempts recorded (every record but
	// not_dialled); Abandoned ones come on top.
	Tried int `json:"tried"`
	// Records counts node lines written.
	Records int `json:"records"`
	// Pending counts addresses discovered but never dialled because the
	// crawl was interrupted; Abandoned counts attempts cut short by the
	// interruption before the handshake, which get no record.
	Pending   int `json:"pending"`
	Abandoned int `json:"abandoned"`
	// Dropped counts addresses learned after the MaxNodes cap was reached:
	// neither recorded nor dialled.
	Dropped int `json:"dropped"`

	// ByNetwork and ByOutcome count every record.
	ByNetwork map[string]int  `json:"by_network"`
	ByOutcome map[Outcome]int `json:"by_outcome"`
	// ByUserAgent, ByProtocol and ByService count reachable nodes: by
	// user agent, by protocol version (as a decimal string), and for each
	// service bit the nodes that advertise it. ByServiceSet counts the
	// exact combinations ("NODE_NETWORK|NODE_WITNESS", "NONE").
	ByUserAgent  map[string]int `json:"by_user_agent"`
	ByProtocol   map[string]int `json:"by_protocol"`
	ByService    map[string]int `json:"by_service"`
	ByServiceSet map[string]int `json:"by_service_set"`
	// ByTransport counts reachable nodes by the transport they spoke
	// ("v1", "v2").
	ByTransport map[string]int `json:"by_transport"`
}

// NewSummary returns an empty summary of a crawl of network.
func NewSummary(network string) Summary {
	s := Summary{Network: network}
	s.initMaps()
	return s
}

// Add counts r.
func (s *Summary) Add(r *Record) {
	s.initMaps()
	s.Records++
	if r.Outcome != NotDialled {
		s.Tried++
	}
	s.ByNetwork[r.Network]++
	s.ByOutcome[r.Outcome]++
	if r.Outcome != Reachable || r.Handshake == nil {
		return
	}
	h := r.Handshake
	if r.Transport != "" {
		s.ByTransport[r.Transport]++
	}
	s.ByUserAgent[h.UserAgent]++
	s.ByProtocol[strconv.Itoa(int(h.Protocol))]++
	set := "NONE"
	for i, name := range h.Services {
		s.ByService[name]++
		if i == 0 {
			set = name
		} else {
			set += "|" + name
		}
	}
	s.ByServiceSet[set]++
}

// initMaps makes the maps of a zero Summary.
func (s *Summary) initMaps() {
	if s.Type == "" {
		s.Type = SummaryType
	}
	for _, m := range []*map[string]int{&s.ByNetwork, &s.ByUserAgent, &s.ByProtocol, &s.ByService, &s.ByServiceSet, &s.ByTransport} {
		if *m == nil {
			*m = map[string]int{}
		}
	}
	if s.ByOutcome == nil {
		s.ByOutcome = map[Outcome]int{}
	}
}

// ms renders a duration in milliseconds, to the microsecond.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
