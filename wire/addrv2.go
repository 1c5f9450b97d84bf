package wire

import (
	"crypto/sha3"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxAddrV2Len is the longest address an addrv2 entry may carry (BIP155).
const MaxAddrV2Len = 512

// NetID is a BIP155 network id.
type NetID uint8

// BIP155 network ids.
const (
	NetIPv4  NetID = 1 // 4 bytes
	NetIPv6  NetID = 2 // 16 bytes
	NetTorV2 NetID = 3 // 10 bytes; deprecated, skipped like an unknown id (as Bitcoin Core does)
	NetTorV3 NetID = 4 // 32 bytes: ed25519 public key
	NetI2P   NetID = 5 // 32 bytes: SHA-256 of the destination
	NetCJDNS NetID = 6 // 16 bytes, fc00::/8
)

// addrLen returns the address length of a network id this package decodes,
// or 0 for ids that are skipped.
func (n NetID) addrLen() int {
	switch n {
	case NetIPv4:
		return 4
	case NetIPv6, NetCJDNS:
		return 16
	case NetTorV3, NetI2P:
		return 32
	}
	return 0
}

// String returns the network's name: "ipv4", "ipv6", "torv2", "torv3",
// "i2p", "cjdns", or "net(N)".
func (n NetID) String() string {
	switch n {
	case NetIPv4:
		return "ipv4"
	case NetIPv6:
		return "ipv6"
	case NetTorV2:
		return "torv2"
	case NetTorV3:
		return "torv3"
	case NetI2P:
		return "i2p"
	case NetCJDNS:
		return "cjdns"
	}
	return "net(" + strconv.Itoa(int(n)) + ")"
}

// NetAddrV2 is a BIP155 addrv2 entry.
//
// IP holds the address of IPv4, IPv6 and CJDNS entries; Key holds the 32
// bytes of Tor v3 (public key) and I2P (destination hash) entries.
type NetAddrV2 struct {
	Time     uint32 // Unix seconds
	Services ServiceFlag
	Network  NetID
	IP       netip.Addr
	Key      [32]byte
	Port     uint16
}

// NetAddrV2FromAddrPort returns an IPv4 or IPv6 entry for ap. An
// IPv4-mapped IPv6 address becomes an IPv4 entry.
func NetAddrV2FromAddrPort(ap netip.AddrPort, services ServiceFlag, t uint32) NetAddrV2 {
	ip := ap.Addr().Unmap()
	n := NetIPv6
	if ip.Is4() {
		n = NetIPv4
	}
	return NetAddrV2{Time: t, Services: services, Network: n, IP: ip, Port: ap.Port()}
}

// AddrPort returns the address as a netip.AddrPort for IPv4, IPv6 and CJDNS
// entries; ok is false for Tor and I2P.
func (a NetAddrV2) AddrPort() (ap netip.AddrPort, ok bool) {
	switch a.Network {
	case NetIPv4, NetIPv6, NetCJDNS:
		return netip.AddrPortFrom(a.IP, a.Port), true
	}
	return netip.AddrPort{}, false
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// Host renders the address without its port: an IP address, a Tor v3
// "….onion" name (with the version 3 checksum of rend-spec-v3), or an I2P
// "….b32.i2p" name.
func (a NetAddrV2) Host() string {
	switch a.Network {
	case NetTorV3:
		return TorV3Host(a.Key)
	case NetI2P:
		return strings.ToLower(b32.EncodeToString(a.Key[:])) + ".b32.i2p"
	}
	return a.IP.String()
}

// String renders host:port, with IPv6 hosts in brackets.
func (a NetAddrV2) String() string {
	if a.Network == NetIPv6 || a.Network == NetCJDNS {
		return "[" + a.Host() + "]:" + strconv.Itoa(int(a.Port))
	}
	return a.Host() + ":" + strconv.Itoa(int(a.Port))
}

// TorV3Host returns the .onion host name of a Tor v3 public key:
// base32(pubkey | checksum | 0x03) where checksum is the first two bytes of
// SHA3-256(".onion checksum" | pubkey | 0x03).
func TorV3Host(pubkey [32]byte) string {
	h := sha3.New256()
	h.Write([]byte(".onion checksum"))
	h.Write(pubkey[:])
	h.Write([]byte{3})
	sum := h.Sum(nil)
	var raw [35]byte
	copy(raw[:], pubkey[:])
	raw[32], raw[33], raw[34] = sum[0], sum[1], 3
	return strings.ToLower(b32.EncodeToString(raw[:])) + ".onion"
}

// ParseTorV3Host parses a "….onion" v3 host name back to its public key,
// checking the version and checksum. Letters may be in either case; anything
// but ASCII is refused.
func ParseTorV3Host(host string) ([32]byte, error) {
	var key [32]byte
	for i := 0; i < len(host); i++ {
		if host[i] >= utf8.RuneSelf {
			// strings.ToLower would fold U+212A KELVIN SIGN to 'k'.
			return key, fmt.Errorf("wire: %q is not a Tor v3 .onion name", host)
		}
	}
	name, ok := strings.CutSuffix(strings.ToLower(host), ".onion")
	if !ok || len(name) != 56 {
		return key, fmt.Errorf("wire: %q is not a Tor v3 .onion name", host)
	}
	raw, err := b32.DecodeString(strings.ToUpper(name))
	if err != nil || len(raw) != 35 || raw[34] != 3 {
		return key, fmt.Errorf("wire: %q is not a Tor v3 .onion name", host)
	}
	copy(key[:], raw[:32])
	if TorV3Host(key) != strings.ToLower(host) {
		return key, fmt.Errorf("wire: %q has a bad .onion checksum", host)
	}
	return key, nil
}

// AppendNetAddrV2 appends the BIP155 encoding of a. An entry whose Network
// this package does not decode is encoded with an empty address; an IPv4
// entry whose IP is not an IPv4 address is encoded as 0.0.0.0, and an IPv6 or
// CJDNS entry with the zero IP as ::. An IPv6 entry with an IPv4 IP is encoded
// IPv4-mapped, which decoders skip: build entries with NetAddrV2FromAddrPort.
func AppendNetAddrV2(dst []byte, a NetAddrV2) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, a.Time)
	dst = AppendVarInt(dst, uint64(a.Services))
	dst = append(dst, byte(a.Network))
	switch a.Network {
	case NetIPv4:
		var ip [4]byte // an IP that is not IPv4 (or the zero Addr) encodes as 0.0.0.0
		if u := a.IP.Unmap(); u.Is4() {
			ip = u.As4()
		}
		dst = AppendVarBytes(dst, ip[:])
	case NetIPv6, NetCJDNS:
		ip := a.IP.As16()
		dst = AppendVarBytes(dst, ip[:])
	case NetTorV3, NetI2P:
		dst = AppendVarBytes(dst, a.Key[:])
	default:
		dst = AppendVarInt(dst, 0)
	}
	return binary.BigEndian.AppendUint16(dst, a.Port)
}

// netAddrV2 reads one entry into a, which it overwrites whole (decoding in
// place spares Decode a copy of every entry). It returns false for an entry
// that is skipped: an unknown or deprecated network id, as BIP155 asks, or
// an entry that is not Valid (an IPv4-mapped, OnionCat or internal IPv6
// address, an unspecified one, CJDNS outside fc00::/8); and on an error.
func (r *reader) netAddrV2(a *NetAddrV2) (ok bool) {
	if r.err == nil {
		if ok, done := r.netAddrV2Fast(a); done {
			return ok
		}
	}
	*a = NetAddrV2{}
	a.Time = r.uint32()
	a.Services = ServiceFlag(r.varInt())
	a.Network = NetID(r.uint8())
	start := r.off
	size := r.varInt()
	if r.err == nil && size > MaxAddrV2Len {
		// BIP155: longer than 512 bytes is an error whatever the network,
		// known or not, and is refused before the bytes are skipped.
		r.fail(start, ErrBadAddress)
		return false
	}
	addr := r.take(int(size))
	a.Port = r.uint16BE()
	if r.err != nil {
		return false
	}
	want := a.Network.addrLen()
	if want == 0 {
		return false
	}
	if len(addr) != want {
		r.fail(start, ErrBadAddress)
		return false
	}
	switch a.Network {
	case NetIPv4:
		a.IP = netip.AddrFrom4([4]byte(addr))
	case NetIPv6, NetCJDNS:
		a.IP = netip.AddrFrom16([16]byte(addr))
	default:
		a.Key = [32]byte(addr)
	}
	// An IPv4 or Tor v2 address dressed as IPv6 (BIP155 says to ignore
	// OnionCat, Bitcoin Core treats both as invalid and btcd drops both:
	// keeping them would let one IPv4 address arrive in two spellings),
	// Core's internal addresses, the unspecified address and a CJDNS
	// address outside fc00::/8 are skipped, as Core does not keep them.
	return a.Valid()
}

// netAddrV2Fast reads an entry of the common shape (a canonical services
// CompactSize, a known network with its address length in one byte, all of
// it in the payload) with one bounds check, and reports done. Anything else
// (truncation, an unknown network, a length that is wrong or long) is left,
// done false, to the careful path, which reads the entry from its start:
// the fast path changes the speed, never the outcome.
func (r *reader) netAddrV2Fast(a *NetAddrV2) (ok, done bool) {
	b := r.b[r.off:]
	if len(b) < 4+1+2 {
		return false, false
	}
	var svc uint64
	i := 5
	switch p := b[4]; {
	case p < 0xfd:
		svc = uint64(p)
	case p == 0xfd && len(b) >= 7:
		svc, i = uint64(binary.LittleEndian.Uint16(b[5:])), 7
		if svc < 0xfd {
			return false, false // non-canonical: the careful path says so
		}
	case p == 0xfe && len(b) >= 9:
		svc, i = uint64(binary.LittleEndian.Uint32(b[5:])), 9
		if svc <= 0xffff {
			return false, false
		}
	default:
		return false, false // 9-byte services (or truncated): rare
	}
	if len(b) < i+2 {
		return false, false
	}
	n := NetID(b[i])
	size := n.addrLen()
	if size == 0 || int(b[i+1]) != size || len(b) < i+2+size+2 {
		return false, false
	}
	addr := b[i+2 : i+2+size]
	var ip netip.Addr
	// Judged from the bytes, before the entry is stored (reading back the
	// fields just written stalls on store forwarding), as validAddr does.
	switch n {
	case NetIPv4:
		ip = netip.AddrFrom4([4]byte(addr))
		ok = binary.BigEndian.Uint32(addr) != 0
	case NetIPv6:
		ip = netip.AddrFrom16([16]byte(addr))
		ok = validIPv6(addr)
	case NetCJDNS:
		ip = netip.AddrFrom16([16]byte(addr))
		ok = addr[0] == 0xfc
	default:
		ok = true
	}
	a.Time = binary.LittleEndian.Uint32(b)
	a.Services = ServiceFlag(svc)
	a.Network = n
	a.IP = ip
	a.Port = binary.BigEndian.Uint16(b[i+2+size:])
	if ip.IsValid() {
		a.Key = [32]byte{}
	} else {
		a.Key = [32]byte(addr)
	}
	r.off += i + 2 + size + 2
	return ok, true
}

// onionCat is the IPv6 range that carried Tor v2 addresses in addr.
var onionCat = netip.MustParsePrefix("fd87:d87e:eb43::/48")

// internalPrefix is the IPv6 form of Bitcoin Core's NET_INTERNAL addresses
// (fd6b:88c0:8724::/48): names Core makes up for its seeds, never a peer.
var internalPrefix = netip.MustParsePrefix("fd6b:88c0:8724::/48")

// Valid reports whether a peer may be at a, as Bitcoin Core's
// CNetAddr::IsValid decides what it gossips: not the unspecified address
// (0.0.0.0, ::), not a Tor v2 (OnionCat) or internal (fd6b:88c0:8724::/48)
// address dressed as IPv6, a CJDNS address inside fc00::/8, and a known
// network. The addrv2 decoder already skips every entry this refuses; an
// addr (v1) entry converted with NetAddrV2FromAddrPort is checked here.
func (a NetAddrV2) Valid() bool { return validAddr(a.Network, a.IP) }

// validIPv6 is validAddr of the 16 bytes of an IPv6 entry: not ::, not
// IPv4-mapped, not OnionCat or Core's internal prefix.
func validIPv6(b []byte) bool {
	hi, lo := binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:])
	switch {
	case hi == 0 && lo == 0: // ::
		return false
	case hi == 0 && lo>>32 == 0xffff: // ::ffff:0:0/96
		return false
	case hi>>16 == 0xfd87_d87e_eb43: // OnionCat, fd87:d87e:eb43::/48
		return false
	case hi>>16 == 0xfd6b_88c0_8724: // Core's internal prefix, fd6b:88c0:8724::/48
		return false
	}
	return true
}

// validAddr is Valid of an entry of network n at ip (unused for Tor and
// I2P), for callers that have not stored the entry yet.
func validAddr(n NetID, ip netip.Addr) bool {
	switch n {
	case NetIPv4:
		return ip.Is4() && !ip.IsUnspecified()
	case NetIPv6:
		return ip.Is6() && !ip.IsUnspecified() && !ip.Is4In6() && !onionCat.Contains(ip) && !internalPrefix.Contains(ip)
	case NetCJDNS:
		return ip.Is6() && ip.As16()[0] == 0xfc
	case NetTorV3, NetI2P:
		return true
	}
	return false
}
