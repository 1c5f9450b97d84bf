package crawler

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/btcpipe/btcpipe/wire"
)

// Bogons are the address ranges that are not globally routable: private,
// loopback, link-local, shared, documentation, benchmarking, multicast and
// reserved ranges (IANA special-purpose registries, RFC 6890 and successors).
// An address in one of them is dialled only when the allowlist names that
// range, or a part of it, explicitly (see Allowlist.Check).
var Bogons = mustPrefixes(
	// IPv4
	"0.0.0.0/8",       // "this network"
	"10.0.0.0/8",      // RFC 1918
	"100.64.0.0/10",   // RFC 6598 shared address space (CGNAT)
	"127.0.0.0/8",     // loopback
	"169.254.0.0/16",  // link local
	"172.16.0.0/12",   // RFC 1918
	"192.0.0.0/24",    // IETF protocol assignments
	"192.0.2.0/24",    // TEST-NET-1
	"192.88.99.0/24",  // 6to4 relay anycast (deprecated)
	"192.168.0.0/16",  // RFC 1918
	"198.18.0.0/15",   // RFC 2544 benchmarking
	"198.51.100.0/24", // TEST-NET-2
	"203.0.113.0/24",  // TEST-NET-3
	"224.0.0.0/4",     // multicast
	"240.0.0.0/4",     // reserved, and the broadcast address
	// IPv6
	"::/96", // unspecified, loopback and IPv4-compatible (deprecated)
	// (IPv4-mapped addresses are unmapped and checked as IPv4.)
	"64:ff9b:1::/48", // local-use NAT64
	"100::/64",       // discard-only
	"2001:2::/48",    // benchmarking
	"2001:10::/28",   // ORCHID
	"2001:20::/28",   // ORCHIDv2
	"2001:db8::/32",  // documentation
	"3fff::/20",      // documentation (RFC 9637)
	"5f00::/16",      // SRv6 SIDs
	"fc00::/7",       // unique local (and CJDNS's fc00::/8)
	"fe80::/10",      // link local
	"fec0::/10",      // site local (deprecated)
	"ff00::/8",       // multicast
)

// DefaultAllow returns the allowlist used when none is configured: every
// public routable address (0.0.0.0/0 and ::/0, bogons excluded) for mainnet,
// the testnets and signet; loopback only (127.0.0.0/8 and ::1/128) for
// regtest and simnet.
func DefaultAllow(n *wire.Network) []netip.Prefix {
	if n.Name == wire.Regtest.Name || n.Name == wire.Simnet.Name {
		return mustPrefixes("127.0.0.0/8", "::1/128")
	}
	return mustPrefixes("0.0.0.0/0", "::/0")
}

// ParsePrefixes parses a list of CIDR prefixes ("127.0.0.0/8", "::1/128");
// a bare address stands for itself alone (/32 or /128). Blank entries are
// skipped.
func ParsePrefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("bad prefix %q: %w", s, err)
			}
			if p.Addr().Is4In6() {
				p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
			}
			out = append(out, p.Masked())
			continue
		}
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("bad prefix %q: want a CIDR like 127.0.0.0/8 or an address", s)
		}
		ip = ip.Unmap().WithZone("")
		out = append(out, netip.PrefixFrom(ip, ip.BitLen()))
	}
	return out, nil
}

func mustPrefixes(list ...string) []netip.Prefix {
	p, err := ParsePrefixes(list)
	if err != nil {
		panic(err)
	}
	return p
}

// Allowlist decides which addresses the crawler may dial.
type Allowlist struct {
	prefixes []netip.Prefix
}

// NewAllowlist returns an allowlist of prefixes.
func NewAllowlist(prefixes []netip.Prefix) Allowlist {
	ps := make([]netip.Prefix, len(prefixes))
	for i, p := range prefixes {
		ps[i] = p.Masked()
	}
	return Allowlist{prefixes: ps}
}

// String joins the prefixes with commas.
func (a Allowlist) String() string {
	s := make([]string, len(a.prefixes))
	for i, p := range a.prefixes {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// Check reports whether ap may be dialled, and if not, why. An address may
// be dialled when its port is not 0, it lies inside an allowlist prefix,
// and, if it lies in a bogon range (see Bogons), some allowlist prefix
// containing it is no broader than that range: 0.0.0.0/0 does not let
// 10.1.2.3 or 127.0.0.1 through, 10.0.0.0/8 or 127.0.0.0/8 does. IPv4-mapped
// IPv6 addresses are checked as IPv4.
func (a Allowlist) Check(ap netip.AddrPort) (ok bool, reason string) {
	ip := ap.Addr().Unmap()
	if !ip.IsValid() {
		return false, "invalid address"
	}
	if ap.Port() == 0 {
		return false, "port 0"
	}
	bogon, isBogon := bogonRange(ip)
	inside := false
	for _, p := range a.prefixes {
		if !p.Contains(ip) {
			continue
		}
		inside = true
		if !isBogon || p.Bits() >= bogon.Bits() {
			return true, ""
		}
	}
	if !inside {
		return false, "outside the allowlist"
	}
	return false, "bogon (" + bogon.String() + "), not named by the allowlist"
}

// bogonRange returns the broadest bogon range containing ip.
func bogonRange(ip netip.Addr) (netip.Prefix, bool) {
	var best netip.Prefix
	found := false
	for _, b := range Bogons {
		if b.Contains(ip) && (!found || b.Bits() < best.Bits()) {
			best, found = b, true
		}
	}
	return best, found
}

// IsBogon reports whether ip lies in one of the Bogons.
func IsBogon(ip netip.Addr) bool {
	_, ok := bogonRange(ip.Unmap())
	return ok
}
