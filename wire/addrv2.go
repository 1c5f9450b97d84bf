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
// The address is held as its bytes in a fixed 32-byte array (no pointers:
// 48 bytes an entry, and a list the garbage collector need not scan), read
// with IP or Key and set with WithIP or WithKey once Network is set, or
// built with NetAddrV2FromAddrPort:
//
//	a := wire.NetAddrV2{Network: wire.NetCJDNS, Port: 8333}.WithIP(ip)
//
// The bytes beyond the network's length are kept zero, so == compares
// entries. Changing Network afterwards leaves the bytes as they were.
type NetAddrV2 struct {
	addr     [32]byte // IPv4: 4 bytes, IPv6 and CJDNS: 16, Tor v3 and I2P: 32; zero beyond
	Services ServiceFlag
	Time     uint32 // Unix seconds
	Port     uint16
	Network  NetID
}

// NetAddrV2FromAddrPort returns an IPv4 or IPv6 entry for ap. An
// IPv4-mapped IPv6 address becomes an IPv4 entry.
func NetAddrV2FromAddrPort(ap netip.AddrPort, services ServiceFlag, t uint32) NetAddrV2 {
	ip := ap.Addr().Unmap()
	n := NetIPv6
	if ip.Is4() {
		n = NetIPv4
	}
	return NetAddrV2{Time: t, Services: services, Network: n, Port: ap.Port()}.WithIP(ip)
}

// WithIP returns a with the address ip, for an IPv4, IPv6 or CJDNS entry:
// set Network first. For NetIPv4 an address that is not IPv4 (nor
// IPv4-mapped) is stored as 0.0.0.0; for IPv6 and CJDNS an IPv4 address is
// stored IPv4-mapped, which decoders skip. An entry of another network is
// returned unchanged.
func (a NetAddrV2) WithIP(ip netip.Addr) NetAddrV2 {
	switch a.Network {
	case NetIPv4:
		a.addr = [32]byte{}
		if u := ip.Unmap(); u.Is4() {
			b := u.As4()
			copy(a.addr[:], b[:])
		}
	case NetIPv6, NetCJDNS:
		a.addr = [32]byte{}
		if ip.IsValid() {
			b := ip.As16()
			copy(a.addr[:], b[:])
		}
	}
	return a
}

// WithKey returns a with the 32 bytes of a Tor v3 (public key) or I2P
// (destination hash) entry: set Network first. An entry of another network
// is returned unchanged.
func (a NetAddrV2) WithKey(key [32]byte) NetAddrV2 {
	if a.Network == NetTorV3 || a.Network == NetI2P {
		a.addr = key
	}
	return a
}

// IP returns the address of an IPv4, IPv6 or CJDNS entry, and the zero Addr
// for other networks.
func (a NetAddrV2) IP() netip.Addr {
	switch a.Network {
	case NetIPv4:
		return netip.AddrFrom4([4]byte(a.addr[:4]))
	case NetIPv6, NetCJDNS:
		return netip.AddrFrom16([16]byte(a.addr[:16]))
	}
	return netip.Addr{}
}

// Key returns the 32 bytes of a Tor v3 (public key) or I2P (destination
// hash) entry, and zeros for other networks.
func (a NetAddrV2) Key() [32]byte {
	if a.Network == NetTorV3 || a.Network == NetI2P {
		return a.addr
	}
	return [32]byte{}
}

// AddrPort returns the address as a netip.AddrPort for IPv4, IPv6 and CJDNS
// entries; ok is false for Tor and I2P.
func (a NetAddrV2) AddrPort() (ap netip.AddrPort, ok bool) {
	switch a.Network {
	case NetIPv4, NetIPv6, NetCJDNS:
		return netip.AddrPortFrom(a.IP(), a.Port), true
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
		return TorV3Host(a.addr)
	case NetI2P:
		return strings.ToLower(b32.EncodeToString(a.addr[:])) + ".b32.i2p"
	}
	return a.IP().String()
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

// AppendNetAddrV2 appends the BIP155 encoding of a: the address is its
// network's length of bytes (an entry whose Network this package does not
// decode is encoded with an empty address).
func AppendNetAddrV2(dst []byte, a NetAddrV2) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, a.Time)
	dst = AppendVarInt(dst, uint64(a.Services))
	dst = append(dst, byte(a.Network))
	dst = AppendVarBytes(dst, a.addr[:a.Network.addrLen()])
	return binary.BigEndian.AppendUint16(dst, a.Port)
}

// netAddrV2 reads one entry of any shape into a, which it overwrites whole.
// It returns false for an entry that is skipped: an unknown or deprecated
// network id, as BIP155 asks, or an entry that is not Valid (an
// IPv4-mapped, OnionCat or internal IPv6 address, an unspecified one, CJDNS
// outside fc00::/8); and on an error.
func (r *reader) netAddrV2(a *NetAddrV2) (ok bool) {
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
	copy(a.addr[:], addr)
	// An IPv4 or Tor v2 address dressed as IPv6 (BIP155 says to ignore
	// OnionCat, Bitcoin Core treats both as invalid and btcd drops both:
	// keeping them would let one IPv4 address arrive in two spellings),
	// Core's internal addresses, the unspecified address and a CJDNS
	// address outside fc00::/8 are skipped, as Core does not keep them.
	return a.Valid()
}

// addrV2Window is what the fast path may read of an entry: time (4),
// services (up to 3), network (1), length (1), an address read as 32 bytes
// whatever its length, the port (2): 43 bytes, and 65 so that the compiler
// sees every index in bounds. Entries that begin closer than this to the
// end of the payload take the careful path.
const addrV2Window = 65

// addrV2Masks[n] keeps, of the 32 bytes read at an address of network n
// (as four little-endian words), the network's length of them.
var addrV2Masks = [8][4]uint64{
	NetIPv4:  {0xffff_ffff, 0, 0, 0},
	NetIPv6:  {^uint64(0), ^uint64(0), 0, 0},
	NetCJDNS: {^uint64(0), ^uint64(0), 0, 0},
	NetTorV3: {^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)},
	NetI2P:   {^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)},
}

// addrV2Lens is NetID.addrLen as a table (0: skipped or unknown).
var addrV2Lens = [256]uint8{NetIPv4: 4, NetIPv6: 16, NetCJDNS: 16, NetTorV3: 32, NetI2P: 32}

// addrV2Suspect[n<<8|b] is whether an entry of network n (below 8) whose
// address begins with the byte b may be one Valid refuses: every refused
// IPv4 (0.0.0.0) and IPv6 address (::, ::ffff:0:0/96, OnionCat and Core's
// internal prefix) begins with 0x00 or 0xfd, and a CJDNS address must begin
// with 0xfc. One load tells the fast path, without a branch on the network,
// whether Valid must look.
var addrV2Suspect = func() (t [8 << 8]uint8) {
	t[int(NetIPv4)<<8] = 1 // 0x00
	t[int(NetIPv6)<<8] = 1 // 0x00
	t[int(NetIPv6)<<8|0xfd] = 1
	for b := range 256 {
		if b != 0xfc {
			t[int(NetCJDNS)<<8|b] = 1
		}
	}
	return t
}()

// addrV2Run decodes, into list from its start, the entries of the common
// shape (a canonical services CompactSize of 1 or 3 bytes, a known network
// with its length in one byte) that follow at r.off, while at least
// addrV2Window bytes remain, and returns how many it decoded; it stops at
// the first entry of another shape, which the careful path reads (it
// changes the speed, never the outcome). An entry that Valid refuses is
// decoded with Network 0, and counted in skipped, for Decode to drop.
//
// Each entry costs a few loads, masks and stores, no allocation and no
// branch on its network, which is the least predictable byte of an entry
// (a mispredicted branch cost more than the rest of the work): the address
// is read as four words whatever its length and masked to it, one table
// says whether Valid must look at it, and the next entry's offset depends
// on one load (the length byte), so that consecutive entries overlap in the
// processor.
func (r *reader) addrV2Run(list []NetAddrV2, skipped *int) int {
	var suspects uint8
	off, j := addrV2Entries(r.b[r.off:], list, &suspects)
	r.off += off
	if suspects != 0 {
		// Rare in honest traffic, and kept out of the loop, where a call
		// would cost every entry its registers.
		for k := range list[:j] {
			if !list[k].Valid() {
				list[k].Network = 0
				*skipped++
			}
		}
	}
	return j
}

// addrV2EntriesGo is the loop of addrV2Run (addrV2Entries: in assembly on
// amd64, this elsewhere and under the purego tag). It decodes into list
// from its start the entries of the common shape at the start of p while
// at least addrV2Window bytes remain, and returns the bytes it read and the
// entries it decoded; it sets *suspects non-zero if one of them may not be
// Valid.
func addrV2EntriesGo(p []byte, list []NetAddrV2, suspects *uint8) (off, j int) {
	// p is not resliced in the loop: the next entry's offset is then one
	// load (the length byte) and an add away, where reslicing adds the
	// arithmetic that keeps a slice's pointer in bounds to that chain.
	sus := uint8(0)
	for ; j < len(list) && off <= len(p)-addrV2Window; j++ {
		e := (*[addrV2Window]byte)(p[off : off+addrV2Window])
		a := &list[j]
		var n uint8
		var i int
		switch {
		case e[4] < 0xfd:
			a.Services, n, i = ServiceFlag(e[4]), e[5], 5
		case e[4] == 0xfd && binary.LittleEndian.Uint16(e[5:7]) >= 0xfd:
			a.Services, n, i = ServiceFlag(binary.LittleEndian.Uint16(e[5:7])), e[7], 7
		default:
			*suspects |= sus
			return off, j
		}
		next := off + i + 4 // + size: the add that waits on the load is the last
		size := int(e[i+1])
		if size == 0 || int(addrV2Lens[n]) != size {
			*suspects |= sus
			return off, j
		}
		a.Time = binary.LittleEndian.Uint32(e[:4])
		a.Network = NetID(n)
		port := (i + 2 + size) & 63 // i+2+size: the & only spares a bounds check
		a.Port = uint16(e[port])<<8 | uint16(e[port+1])
		m := &addrV2Masks[n&7]
		w0 := binary.LittleEndian.Uint64(e[i+2:]) & m[0]
		sus |= addrV2Suspect[int(n&7)<<8|int(uint8(w0))]
		binary.LittleEndian.PutUint64(a.addr[0:], w0)
		binary.LittleEndian.PutUint64(a.addr[8:], binary.LittleEndian.Uint64(e[i+10:])&m[1])
		binary.LittleEndian.PutUint64(a.addr[16:], binary.LittleEndian.Uint64(e[i+18:])&m[2])
		binary.LittleEndian.PutUint64(a.addr[24:], binary.LittleEndian.Uint64(e[i+26:])&m[3])
		off = next + size
	}
	*suspects |= sus
	return off, j
}

// Valid reports whether a peer may be at a, as Bitcoin Core's
// CNetAddr::IsValid decides what it gossips: not the unspecified address
// (0.0.0.0, ::), not a Tor v2 (OnionCat) or internal (fd6b:88c0:8724::/48)
// address dressed as IPv6, a CJDNS address inside fc00::/8, and a known
// network. The addrv2 decoder already skips every entry this refuses; an
// addr (v1) entry converted with NetAddrV2FromAddrPort is checked here.
func (a NetAddrV2) Valid() bool {
	switch a.Network {
	case NetIPv4:
		return binary.BigEndian.Uint32(a.addr[:4]) != 0
	case NetIPv6:
		return validIPv6Words(binary.BigEndian.Uint64(a.addr[:8]), binary.BigEndian.Uint64(a.addr[8:16]))
	case NetCJDNS:
		return a.addr[0] == 0xfc
	case NetTorV3, NetI2P:
		return true
	}
	return false
}

// validIPv6Words is Valid of an IPv6 entry whose 16 bytes, read big-endian,
// are hi and lo: not ::, not IPv4-mapped, not OnionCat or Core's internal
// prefix.
func validIPv6Words(hi, lo uint64) bool {
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
