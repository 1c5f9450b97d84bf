package wire_test

import (
	"encoding/hex"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/btcpipe/btcpipe/wire"
)

// unhex decodes hex that may be spread over several strings with spaces and
// comments stripped by the caller; it panics on bad input (test vectors only).
func unhex(parts ...string) []byte {
	s := strings.Join(parts, "")
	s = strings.NewReplacer(" ", "", "\n", "", "\t", "").Replace(s)
	b, err := hex.DecodeString(s)
	if err != nil {
		panic("bad test hex: " + err.Error())
	}
	return b
}

func mustAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func key32(t testing.TB, s string) [32]byte {
	t.Helper()
	b := unhex(s)
	if len(b) != 32 {
		t.Fatalf("key32(%q): %d bytes, want 32", s, len(b))
	}
	return [32]byte(b)
}

// Real-world vectors.
//
// The version, addr, pong and verack frames are the hexdumps of the Bitcoin
// wiki's protocol documentation (en.bitcoin.it/wiki/Protocol_documentation),
// a Satoshi 0.7.2 (protocol 60002) node on mainnet; their checksums were
// checked independently with Python's hashlib.
//
// The Tor v3 and I2P addresses and their host names are Bitcoin Core's
// src/test/net_tests.cpp (cnetaddr_unserialize_v2); the second Tor v3 vector
// is RFC 8032's Ed25519 test 1 public key and its .onion name.
const (
	wikiVersionFrame = "f9beb4d9 76657273696f6e0000000000 64000000 3b648d5a" +
		"62ea0000" + // protocol 60002
		"0100000000000000" + // services NODE_NETWORK
		"11b2d05000000000" + // timestamp 1355854353
		"0100000000000000 00000000000000000000ffff00000000 0000" + // addr_recv
		"0100000000000000 00000000000000000000ffff00000000 0000" + // addr_from
		"3b2eb35d8ce61765" + // nonce
		"0f 2f5361746f7368693a302e372e322f" + // "/Satoshi:0.7.2/"
		"c03e0300" // start height 212672; no relay byte (pre-BIP37)
	wikiAddrFrame = "f9beb4d9 616464720000000000000000 1f000000 ed52399b" +
		"01" + // one entry
		"e215104d" + // time 0x4d1015e2
		"0100000000000000" + // NODE_NETWORK
		"00000000000000000000ffff0a000001" + // 10.0.0.1
		"208d" // port 8333
	wikiPongFrame   = "f9beb4d9 706f6e670000000000000000 08000000 eaf3b51d 0194102111e2af4d"
	wikiVerackFrame = "f9beb4d9 76657261636b000000000000 00000000 5df6e0e2"

	coreTorV3Key   = "79bcc625184b05194975c28b66b66b0469f7f6556fb1ac3189a79b40dda32f1f"
	coreTorV3Host  = "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion"
	rfc8032Key     = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
	rfc8032Host    = "25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sid.onion"
	coreI2PKey     = "a2894dabaec08c0051a481a6dac88b64f98232ae42d4b6fd2fa81952dfe36a87"
	coreI2PHost    = "ukeu3k5oycgaauneqgtnvselmt4yemvoilkln7jpvamvfx7dnkdq.b32.i2p"
	coreCJDNSBytes = "fc000001000200030004000500060007"
	coreCJDNSHost  = "fc00:1:2:3:4:5:6:7"
)

// sample is one valid message and, where the test pins them, its exact
// payload bytes.
type sample struct {
	name string
	msg  wire.Message
	hex  string // the payload; "" when only the round trip is checked
}

// samples returns fresh valid messages of every type the package decodes.
func samples(t testing.TB) []sample {
	return []sample{
		{name: "version/full", msg: &wire.Version{
			Protocol:    70016,
			Services:    wire.NodeNetwork | wire.NodeWitness | wire.NodeNetworkLimited,
			Timestamp:   1700000000,
			AddrRecv:    wire.NetAddr{Addr: mustAddrPort("203.0.113.7:8333")},
			AddrFrom:    wire.NetAddr{Services: wire.NodeWitness, Addr: mustAddrPort("[2001:db8::1]:18444")},
			Nonce:       0x0123456789abcdef,
			UserAgent:   "/btcpipe:0.1.0/",
			StartHeight: 850000,
			Relay:       false,
		}, hex: "80110100" + // 70016
			"0904000000000000" + // services
			"00f1536500000000" + // 1700000000
			"0000000000000000 00000000000000000000ffffcb007107 208d" +
			"0800000000000000 20010db8000000000000000000000001 480c" +
			"efcdab8967452301" +
			"0f 2f62746370697065 3a302e312e302f" +
			"50f80c00" + // 850000
			"00"},
		{name: "version/wiki-no-relay", msg: &wire.Version{
			Protocol:    60002,
			Services:    wire.NodeNetwork,
			Timestamp:   1355854353,
			AddrRecv:    wire.NetAddr{Services: wire.NodeNetwork, Addr: mustAddrPort("0.0.0.0:0")},
			AddrFrom:    wire.NetAddr{Services: wire.NodeNetwork, Addr: mustAddrPort("0.0.0.0:0")},
			Nonce:       0x6517e68c5db32e3b,
			UserAgent:   "/Satoshi:0.7.2/",
			StartHeight: 212672,
			Relay:       true, // absent, so true as Bitcoin Core reads it
		}}, // encodes 101 bytes (with the relay byte), so no pinned hex
		{name: "verack", msg: &wire.Verack{}, hex: ""},
		{name: "getaddr", msg: &wire.GetAddr{}},
		{name: "sendaddrv2", msg: &wire.SendAddrV2{}},
		{name: "wtxidrelay", msg: &wire.WTxIDRelay{}},
		{name: "sendheaders", msg: &wire.SendHeaders{}},
		{name: "ping", msg: &wire.Ping{Nonce: 0x0123456789abcdef, HasNonce: true}, hex: "efcdab8967452301"},
		{name: "pong/wiki", msg: &wire.Pong{Nonce: 0x4dafe21121109401}, hex: "0194102111e2af4d"},
		{name: "addr/wiki", msg: &wire.Addr{List: []wire.TimedNetAddr{
			{Time: 0x4d1015e2, NetAddr: wire.NetAddr{Services: wire.NodeNetwork, Addr: mustAddrPort("10.0.0.1:8333")}},
		}}, hex: "01e215104d010000000000000000000000000000000000ffff0a000001208d"},
		{name: "addr/three", msg: &wire.Addr{List: []wire.TimedNetAddr{
			{Time: 1, NetAddr: wire.NetAddr{Services: 0, Addr: mustAddrPort("1.2.3.4:1")}},
			{Time: 0xffffffff, NetAddr: wire.NetAddr{Services: 0xffffffffffffffff, Addr: mustAddrPort("[2001:db8::2]:65535")}},
			{Time: 1700000000, NetAddr: wire.NetAddr{Services: wire.NodeNetwork, Addr: mustAddrPort("[::]:8333")}},
		}}},
		{name: "addrv2/all-networks", msg: &wire.AddrV2{List: []wire.NetAddrV2{
			wire.NetAddrV2{Time: 1700000000, Services: wire.NodeNetwork | wire.NodeWitness | wire.NodeNetworkLimited, Network: wire.NetIPv4, Port: 8333}.WithIP(mustAddr("1.2.3.4")),
			wire.NetAddrV2{Time: 1700000001, Services: 0, Network: wire.NetIPv6, Port: 8333}.WithIP(mustAddr("2001:db8::1")),
			wire.NetAddrV2{Time: 1700000002, Services: wire.NodeNetwork, Network: wire.NetTorV3, Port: 8333}.WithKey(key32(t, coreTorV3Key)),
			wire.NetAddrV2{Time: 1700000003, Services: wire.NodeNetwork, Network: wire.NetI2P, Port: 0}.WithKey(key32(t, coreI2PKey)),
			wire.NetAddrV2{Time: 1700000004, Services: 1 << 40, Network: wire.NetCJDNS, Port: 8333}.WithIP(mustAddr(coreCJDNSHost)),
		}}, hex: "05" +
			"00f15365 fd0904 01 04 01020304 208d" +
			"01f15365 00 02 10 20010db8000000000000000000000001 208d" +
			"02f15365 01 04 20 " + coreTorV3Key + " 208d" +
			"03f15365 01 05 20 " + coreI2PKey + " 0000" +
			"04f15365 ff0000000000010000 06 10 " + coreCJDNSBytes + " 208d"},
		{name: "sendcmpct", msg: &wire.SendCmpct{Announce: true, Version: 2}, hex: "01 0200000000000000"},
		{name: "feefilter", msg: &wire.FeeFilter{FeeRate: 1000}, hex: "e803000000000000"},
		{name: "inv", msg: &wire.Inv{InvList: wire.InvList{List: []wire.InvVect{
			{Type: wire.InvTx, Hash: [32]byte{1, 2, 3}},
			{Type: wire.InvWitnessBlock, Hash: [32]byte{31: 0xff}},
		}}}, hex: "02" +
			"01000000 0102030000000000000000000000000000000000000000000000000000000000" +
			"02000040 00000000000000000000000000000000000000000000000000000000000000ff"},
		{name: "getdata", msg: &wire.GetData{InvList: wire.InvList{List: []wire.InvVect{
			{Type: wire.InvWitnessTx, Hash: [32]byte{0xaa}},
		}}}, hex: "01 01000040 aa00000000000000000000000000000000000000000000000000000000000000"},
		{name: "notfound", msg: &wire.NotFound{InvList: wire.InvList{List: []wire.InvVect{
			{Type: wire.InvWTx, Hash: [32]byte{0xbb}},
		}}}},
		{name: "reject/tx", msg: &wire.Reject{Message: "tx", Code: wire.RejectInsufficientFee, Reason: "min relay fee not met", Hash: [32]byte{0xde, 0xad}},
			hex: "02 7478 42 15 6d696e2072656c617920666565206e6f74206d6574 dead000000000000000000000000000000000000000000000000000000000000"},
		{name: "reject/version", msg: &wire.Reject{Message: "version", Code: wire.RejectObsolete, Reason: "old"},
			hex: "07 76657273696f6e 11 03 6f6c64"},
	}
}

// shorterValid returns the lengths of the strict prefixes of payload (a
// valid cmd payload) that are themselves valid messages, as the protocol
// allows:
//
//   - version: old peers send fewer fields, and Bitcoin Core (and this
//     package) reads each trailing group only if bytes remain: the payload may
//     end after addr_recv (46 bytes), after addr_from+nonce (80), after the
//     user agent, or after the start height (before relay).
//   - ping: an empty ping is the pre-BIP31 form.
//
// Every other strict prefix of every valid payload must be ErrTruncated.
func shorterValid(cmd string, payload []byte) map[int]bool {
	switch cmd {
	case wire.CmdVersion:
		ok := map[int]bool{46: true, 80: true}
		if len(payload) > 80 {
			n, used, err := wire.ReadVarInt(payload[80:])
			if err == nil {
				ua := 80 + used + int(n)
				ok[ua] = true
				ok[ua+4] = true
			}
		}
		return ok
	case wire.CmdPing:
		return map[int]bool{0: true}
	}
	return nil
}

// normalize returns m with empty lists made nil, so that reflect.DeepEqual
// compares decoded and built messages by content.
func normalize(m wire.Message) wire.Message {
	switch v := m.(type) {
	case *wire.Addr:
		if len(v.List) == 0 {
			v.List = nil
		}
	case *wire.AddrV2:
		if len(v.List) == 0 {
			v.List = nil
		}
	case *wire.Inv:
		if len(v.List) == 0 {
			v.List = nil
		}
	case *wire.GetData:
		if len(v.List) == 0 {
			v.List = nil
		}
	case *wire.NotFound:
		if len(v.List) == 0 {
			v.List = nil
		}
	}
	return m
}

func sameMessage(a, b wire.Message) bool {
	return reflect.DeepEqual(normalize(a), normalize(b))
}

// Random message generators, reproducible from the *rand.Rand they are given.

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func randHash(r *rand.Rand) [32]byte { return [32]byte(randBytes(r, 32)) }

// randIP returns an IPv4 or IPv6 address in the form a decoder returns it:
// IPv4 unmapped, everything else as 16 bytes.
func randIP(r *rand.Rand) netip.Addr {
	switch r.IntN(8) {
	case 0:
		return netip.IPv6Unspecified()
	case 1, 2, 3:
		return netip.AddrFrom4([4]byte(randBytes(r, 4)))
	default:
		return netip.AddrFrom16([16]byte(randBytes(r, 16))).Unmap()
	}
}

func randServices(r *rand.Rand) wire.ServiceFlag {
	switch r.IntN(4) {
	case 0:
		return 0
	case 1:
		return wire.ServiceFlag(r.Uint64())
	default:
		return wire.ServiceFlag(r.Uint64N(1 << 12))
	}
}

func randNetAddr(r *rand.Rand) wire.NetAddr {
	return wire.NetAddr{Services: randServices(r), Addr: netip.AddrPortFrom(randIP(r), uint16(r.Uint32()))}
}

// randString returns a string of n bytes, often printable, sometimes any byte.
func randString(r *rand.Rand, n int) string {
	b := randBytes(r, n)
	if r.IntN(4) != 0 {
		for i := range b {
			b[i] = ' ' + b[i]%95
		}
	}
	return string(b)
}

// randLen returns a length in [0, max], biased towards small values and the
// limit itself.
func randLen(r *rand.Rand, max int) int {
	switch r.IntN(10) {
	case 0:
		return max
	case 1:
		return 0
	case 2, 3:
		return r.IntN(max + 1)
	default:
		return r.IntN(min(max, 16) + 1)
	}
}

func randVersion(r *rand.Rand) *wire.Version {
	return &wire.Version{
		Protocol:    int32(r.Uint32()),
		Services:    randServices(r),
		Timestamp:   int64(r.Uint64()),
		AddrRecv:    randNetAddr(r),
		AddrFrom:    randNetAddr(r),
		Nonce:       r.Uint64(),
		UserAgent:   randString(r, randLen(r, wire.MaxUserAgentLen)),
		StartHeight: int32(r.Uint32()),
		Relay:       r.IntN(2) == 0,
	}
}

func randAddr(r *rand.Rand) *wire.Addr {
	m := &wire.Addr{List: make([]wire.TimedNetAddr, randLen(r, wire.MaxAddrEntries))}
	for i := range m.List {
		m.List[i] = wire.TimedNetAddr{Time: r.Uint32(), NetAddr: randNetAddr(r)}
	}
	return m
}

// randNetAddrV2 returns an entry of a network this package decodes.
func randNetAddrV2(r *rand.Rand) wire.NetAddrV2 {
	a := wire.NetAddrV2{Time: r.Uint32(), Services: randServices(r), Port: uint16(r.Uint32())}
	switch r.IntN(5) {
	case 0:
		a.Network = wire.NetIPv4
		a = a.WithIP(netip.AddrFrom4([4]byte(randBytes(r, 4))))
	case 1:
		a.Network = wire.NetIPv6
		a = a.WithIP(netip.AddrFrom16([16]byte(randBytes(r, 16))))
	case 2:
		a.Network = wire.NetTorV3
		a = a.WithKey(randHash(r))
	case 3:
		a.Network = wire.NetI2P
		a = a.WithKey(randHash(r))
	case 4:
		ip := [16]byte(randBytes(r, 16))
		ip[0] = 0xfc
		a.Network = wire.NetCJDNS
		a = a.WithIP(netip.AddrFrom16(ip))
	}
	return a
}

func randAddrV2(r *rand.Rand) *wire.AddrV2 {
	m := &wire.AddrV2{List: make([]wire.NetAddrV2, randLen(r, wire.MaxAddrEntries))}
	for i := range m.List {
		m.List[i] = randNetAddrV2(r)
	}
	return m
}

func randInvList(r *rand.Rand) wire.InvList {
	n := randLen(r, 300)
	if r.IntN(1000) == 0 {
		n = wire.MaxInvEntries // the limit itself, now and then
	}
	l := wire.InvList{List: make([]wire.InvVect, n)}
	types := []wire.InvType{wire.InvError, wire.InvTx, wire.InvBlock, wire.InvFilteredBlock,
		wire.InvCmpctBlock, wire.InvWTx, wire.InvWitnessTx, wire.InvWitnessBlock}
	for i := range l.List {
		t := types[r.IntN(len(types))]
		if r.IntN(8) == 0 {
			t = wire.InvType(r.Uint32())
		}
		l.List[i] = wire.InvVect{Type: t, Hash: randHash(r)}
	}
	return l
}

func randReject(r *rand.Rand) *wire.Reject {
	m := &wire.Reject{Code: wire.RejectCode(r.Uint32()), Reason: randString(r, randLen(r, wire.MaxRejectMessageLen))}
	switch r.IntN(4) {
	case 0:
		m.Message = wire.CmdTx
	case 1:
		m.Message = wire.CmdBlock
	case 2:
		m.Message = wire.KnownCommands[r.IntN(len(wire.KnownCommands))]
	default:
		m.Message = randString(r, randLen(r, wire.MaxRejectMessageLen))
	}
	if m.Message == wire.CmdTx || m.Message == wire.CmdBlock {
		m.Hash = randHash(r)
	}
	return m
}

// randMessage returns a random valid message of command cmd.
func randMessage(r *rand.Rand, cmd string) wire.Message {
	switch cmd {
	case wire.CmdVersion:
		return randVersion(r)
	case wire.CmdPing:
		return &wire.Ping{Nonce: r.Uint64(), HasNonce: true}
	case wire.CmdPong:
		return &wire.Pong{Nonce: r.Uint64()}
	case wire.CmdAddr:
		return randAddr(r)
	case wire.CmdAddrV2:
		return randAddrV2(r)
	case wire.CmdSendCmpct:
		return &wire.SendCmpct{Announce: r.IntN(2) == 0, Version: r.Uint64()}
	case wire.CmdFeeFilter:
		return &wire.FeeFilter{FeeRate: int64(r.Uint64())}
	case wire.CmdInv:
		return &wire.Inv{InvList: randInvList(r)}
	case wire.CmdGetData:
		return &wire.GetData{InvList: randInvList(r)}
	case wire.CmdNotFound:
		return &wire.NotFound{InvList: randInvList(r)}
	case wire.CmdReject:
		return randReject(r)
	}
	return wire.New(cmd) // the empty messages
}

// decodedCommands lists the commands wire decodes into their own types.
var decodedCommands = []string{
	wire.CmdVersion, wire.CmdVerack, wire.CmdPing, wire.CmdPong, wire.CmdGetAddr,
	wire.CmdAddr, wire.CmdAddrV2, wire.CmdSendAddrV2, wire.CmdWTxIDRelay,
	wire.CmdSendHeaders, wire.CmdSendCmpct, wire.CmdFeeFilter, wire.CmdInv,
	wire.CmdGetData, wire.CmdNotFound, wire.CmdReject,
}
