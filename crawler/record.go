package crawler

import (
	"strconv"
	"strings"
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
	// ProxyFailed: the SOCKS5 proxy or the I2P SAM bridge failed (not
	// reachable, refused our credentials, spoke no SOCKS): this says
	// nothing about the peer.
	ProxyFailed Outcome = "proxy_failed"
	// NotDialled: the address was recorded but deliberately not dialled
	// (outside the allowlist, a bogon, Tor/I2P without their proxy, CJDNS
	// without a route, excluded by onlynet, announced too long ago, port
	// 0); Reason says why.
	NotDialled Outcome = "not_dialled"
)

// Outcomes lists every outcome, reachable first and not_dialled last.
var Outcomes = []Outcome{
	Reachable, Refused, Timeout, Reset, Unreachable, HandshakeFailed,
	ClosedAfterVerack, Self, VersionTooOld, ProxyFailed, NotDialled,
}

// Failed reports whether o is a failure class (neither Reachable nor
// NotDialled).
func (o Outcome) Failed() bool { return o != Reachable && o != NotDialled }

// Why a reachable node's session ended (Handshake.Ended). See the package
// documentation for the end-of-answer rule.
const (
	EndedAnswer         = "answer_complete" // its getaddr answer was complete
	EndedNoAnswer       = "no_answer"       // its pong came without any answer: it had nothing to send
	EndedQuiet          = "quiet"           // no new addr message for the quiet period after a full 1,000-entry message
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
	// whose connect succeeded (through a proxy: the proxy's handshake
	// included).
	ConnectMs float64 `json:"connect_ms,omitempty"`
	// Transport is the transport the last connection spoke, "v1" or "v2"
	// (BIP324), for every node whose connect succeeded.
	Transport string `json:"transport,omitempty"`
	// Via is how the address was dialled: direct, tor, proxy or sam;
	// absent when it was not.
	Via string `json:"via,omitempty"`
	// LastAnnounced is the newest timestamp any addr/addrv2 entry gave the
	// address (absent for seeds, which have none); AnnouncedServices the
	// service bits of that entry; Sources how many peers announced it, as
	// of the record (peers visited later may announce it again).
	LastAnnounced     *time.Time `json:"last_announced,omitempty"`
	AnnouncedServices uint64     `json:"announced_services,omitempty"`
	Sources           int        `json:"sources,omitempty"`

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
	// AddrMessages counts the addr/addrv2 messages of its answer.
	AddrMessages int `json:"addr_messages,omitempty"`
	// SelfAnnounced is the peer's announcement of its own address, when
	// it made one (an entry naming the address we dialled, or the single
	// entry of a first one-entry message): counted apart, not in
	// AddrsReturned. SelfOther lists self-announced addresses on other
	// networks than the one dialled (a node on several networks).
	SelfAnnounced string   `json:"self_announced,omitempty"`
	SelfOther     []string `json:"self_other,omitempty"`
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

	// Stale counts addresses skipped because they were last announced
	// longer ago than the maximum age (recorded as not_dialled).
	Stale int `json:"stale"`

	// ByNetwork and ByOutcome count every record; ByNetworkOutcome
	// breaks ByOutcome down by network (ipv4, ipv6, torv3, i2p, cjdns),
	// StaleByNetwork Stale.
	ByNetwork        map[string]int             `json:"by_network"`
	ByOutcome        map[Outcome]int            `json:"by_outcome"`
	ByNetworkOutcome map[string]map[Outcome]int `json:"by_network_outcome"`
	StaleByNetwork   map[string]int             `json:"stale_by_network"`
	// ReachableByNetwork counts reachable nodes per network; UniqueNodes
	// counts reachable nodes once each across networks: a node reached
	// on one network that announced itself on another (SelfOther) where
	// it was reached too counts once. MultiNetwork counts the nodes so
	// merged. Only nodes that tell us are merged: a lower bound.
	ReachableByNetwork map[string]int `json:"reachable_by_network"`
	UniqueNodes        int            `json:"unique_nodes"`
	MultiNetwork       int            `json:"multi_network"`
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

	// unique merges reachable addresses of one node; a finished summary
	// (Crawler.Run's) drops it, a summary still being added to keeps it.
	unique *nodeSets
}

// StaleReasonPrefix starts the Reason of an address skipped for its age.
const StaleReasonPrefix = "stale"

// nodeSets groups reachable addresses into nodes (union-find): an address
// and the addresses it announced as its own on other networks are one
// node once both were reached.
type nodeSets struct {
	parent    map[string]string
	reachable map[string]bool // roots whose set holds a reachable address
	nodes     int             // sets holding a reachable address
	merged    int             // reachable addresses merged into another's node
}

func (u *nodeSets) find(a string) string {
	if u.parent == nil {
		u.parent, u.reachable = map[string]string{}, map[string]bool{}
	}
	p, ok := u.parent[a]
	if !ok {
		u.parent[a] = a
		return a
	}
	for p != a {
		gp := u.parent[p]
		u.parent[a] = gp
		a, p = p, gp
	}
	return a
}

// add counts reachable addr, announced also as each of others.
func (u *nodeSets) add(addr string, others []string) {
	r := u.find(addr)
	if !u.reachable[r] {
		u.reachable[r] = true
		u.nodes++
	} else {
		// The set already held a reachable address that named addr as
		// its own: addr is another address of a node counted already.
		u.merged++
	}
	for _, o := range others {
		u.union(r, u.find(o))
		r = u.find(addr)
	}
}

// union joins the sets of roots a and b.
func (u *nodeSets) union(a, b string) {
	if a == b {
		return
	}
	ra, rb := u.reachable[a], u.reachable[b]
	u.parent[b] = a
	delete(u.reachable, b)
	if ra && rb {
		u.nodes--
		u.merged++
	}
	u.reachable[a] = ra || rb
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
	if s.ByNetworkOutcome[r.Network] == nil {
		s.ByNetworkOutcome[r.Network] = map[Outcome]int{}
	}
	s.ByNetworkOutcome[r.Network][r.Outcome]++
	if r.Outcome == NotDialled && strings.HasPrefix(r.Reason, StaleReasonPrefix) {
		s.Stale++
		s.StaleByNetwork[r.Network]++
	}
	if r.Outcome != Reachable || r.Handshake == nil {
		return
	}
	h := r.Handshake
	if r.Transport != "" {
		s.ByTransport[r.Transport]++
	}
	s.ReachableByNetwork[r.Network]++
	if s.unique == nil {
		s.unique = &nodeSets{nodes: s.UniqueNodes, merged: s.MultiNetwork}
	}
	s.unique.add(r.Addr, h.SelfOther)
	s.UniqueNodes, s.MultiNetwork = s.unique.nodes, s.unique.merged
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
	if s.ByNetworkOutcome == nil {
		s.ByNetworkOutcome = map[string]map[Outcome]int{}
	}
	for _, m := range []*map[string]int{&s.ByNetwork, &s.ByUserAgent, &s.ByProtocol, &s.ByService, &s.ByServiceSet, &s.StaleByNetwork, &s.ReachableByNetwork, &s.ByTransport} {
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
