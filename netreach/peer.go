package netreach

import (
	"encoding/base32"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/btcpipe/btcpipe/wire"
)

// ErrHostName: a peer string names a host that is neither an IP address
// nor a .onion or .b32.i2p name; it must be resolved (see ParsePeer).
var ErrHostName = errors.New("a host name, not an address")

var i2pB32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// cjdnsPrefix is where CJDNS addresses live.
var cjdnsPrefix = netip.MustParsePrefix("fc00::/8")

// IsCJDNS reports whether ip lies in fc00::/8, CJDNS's range.
func IsCJDNS(ip netip.Addr) bool { return cjdnsPrefix.Contains(ip) }

// ParseI2PHost parses an I2P "….b32.i2p" name (52 base32 letters: the
// SHA-256 of the destination) to its 32 bytes. Letters may be in either
// case; anything but ASCII is refused.
func ParseI2PHost(host string) ([32]byte, error) {
	var key [32]byte
	for i := 0; i < len(host); i++ {
		if host[i] >= utf8.RuneSelf {
			return key, fmt.Errorf("%q is not an I2P .b32.i2p name", host)
		}
	}
	name, ok := strings.CutSuffix(strings.ToLower(host), ".b32.i2p")
	if !ok || len(name) != 52 {
		return key, fmt.Errorf("%q is not an I2P .b32.i2p name", host)
	}
	raw, err := i2pB32.DecodeString(strings.ToUpper(name))
	if err != nil || len(raw) != 32 {
		return key, fmt.Errorf("%q is not an I2P .b32.i2p name", host)
	}
	copy(key[:], raw)
	// The 53rd bit is padding: only one spelling is canonical.
	if strings.ToLower(i2pB32.EncodeToString(key[:])) != name {
		return key, fmt.Errorf("%q is not a canonical .b32.i2p name", host)
	}
	return key, nil
}

// ParsePeer parses a peer as a user names it: "….onion:8333" (Tor v3,
// checksum checked), "….b32.i2p:0" or "….b32.i2p" (I2P, whose port is
// always 0: SAM 3.1 has no ports, BIP155), "[fc00::1]:8333" (an address in
// fc00::/8 is CJDNS), "[2001:db8::1]:8333", "1.2.3.4:8333", or any of
// these without a port (defaultPort, except I2P). It never resolves
// anything: a host name that is not one of these returns an error wrapping
// ErrHostName, with the host and port split, for the caller to resolve (or
// to send as a name through a proxy).
func ParsePeer(s string, defaultPort uint16) (a wire.NetAddrV2, host string, err error) {
	host, port, hasPort, err := splitPeer(s)
	if err != nil {
		return a, "", err
	}
	if !hasPort {
		port = defaultPort
	}
	lower := strings.ToLower(host)
	switch {
	case strings.HasSuffix(lower, ".onion"):
		key, err := wire.ParseTorV3Host(host)
		if err != nil {
			return a, "", fmt.Errorf("bad peer %q: %w", s, err)
		}
		if port == 0 {
			return a, "", fmt.Errorf("bad peer %q: port 0", s)
		}
		return wire.NetAddrV2{Network: wire.NetTorV3, Port: port}.WithKey(key), "", nil
	case strings.HasSuffix(lower, ".i2p"):
		key, err := ParseI2PHost(host)
		if err != nil {
			return a, "", fmt.Errorf("bad peer %q: %w", s, err)
		}
		if hasPort && port != 0 {
			return a, "", fmt.Errorf("bad peer %q: I2P peers have port 0 (SAM 3.1 has no ports, BIP155)", s)
		}
		return wire.NetAddrV2{Network: wire.NetI2P}.WithKey(key), "", nil
	}
	ip, perr := netip.ParseAddr(host)
	if perr != nil {
		if host == "" || strings.ContainsAny(host, " /[]%") {
			return a, "", fmt.Errorf("bad peer %q: want host:port, [IPv6]:port, NAME.onion:port or NAME.b32.i2p", s)
		}
		a.Port = port
		return a, host, fmt.Errorf("peer %q: %w", s, ErrHostName)
	}
	if ip.Zone() != "" {
		return a, "", fmt.Errorf("bad peer %q: zoned address", s)
	}
	if port == 0 {
		return a, "", fmt.Errorf("bad peer %q: port 0", s)
	}
	ip = ip.Unmap()
	if IsCJDNS(ip) {
		return wire.NetAddrV2{Network: wire.NetCJDNS, Port: port}.WithIP(ip), "", nil
	}
	return wire.NetAddrV2FromAddrPort(netip.AddrPortFrom(ip, port), 0, 0), "", nil
}

// splitPeer splits host[:port], [v6][:port] or a bare IPv6 address.
func splitPeer(s string) (host string, port uint16, hasPort bool, err error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", 0, false, errors.New("bad peer: empty")
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return s, 0, false, nil
	}
	if h, ok := strings.CutPrefix(s, "["); ok {
		if h, ok := strings.CutSuffix(h, "]"); ok {
			return h, 0, false, nil
		}
	}
	if !strings.Contains(s, ":") {
		return s, 0, false, nil
	}
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, false, fmt.Errorf("bad peer %q: %w", s, err)
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return "", 0, false, fmt.Errorf("bad peer %q: bad port %q", s, p)
	}
	return h, uint16(n), true, nil
}
