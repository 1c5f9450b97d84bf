package btcdtest

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
)

// SeedPort is the port of every address RoutableAddrs returns (mainnet's).
const SeedPort = 8333

// unroutable lists the IPv4 prefixes that btcd v0.26.2's addrmgr.IsRoutable
// refuses (addrmgr/network.go: IsValid, IsLocal, IsZero, IsRFC1918, IsRFC2544,
// IsRFC3927, IsRFC5737, IsRFC6598), plus multicast and the reserved 240/4 that
// are not routable on the Internet either. btcd silently drops such an
// address from addr/addrv2, so seeding one would make the stored count differ
// from the seeded count.
var unroutable = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // IsZero, IsLocal
	netip.MustParsePrefix("10.0.0.0/8"),      // RFC 1918
	netip.MustParsePrefix("100.64.0.0/10"),   // RFC 6598 shared address space
	netip.MustParsePrefix("127.0.0.0/8"),     // loopback (IsLocal)
	netip.MustParsePrefix("169.254.0.0/16"),  // RFC 3927 link local
	netip.MustParsePrefix("172.16.0.0/12"),   // RFC 1918
	netip.MustParsePrefix("192.0.2.0/24"),    // RFC 5737 TEST-NET-1
	netip.MustParsePrefix("192.168.0.0/16"),  // RFC 1918
	netip.MustParsePrefix("198.18.0.0/15"),   // RFC 2544 benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // RFC 5737 TEST-NET-2
	netip.MustParsePrefix("203.0.113.0/24"),  // RFC 5737 TEST-NET-3
	netip.MustParsePrefix("224.0.0.0/4"),     // multicast
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and 255.255.255.255
}

// IsRoutable reports whether btcd v0.26.2's address manager would store an
// IPv4 address (see RoutableAddrs). It answers false for anything that is not
// IPv4 (after unmapping).
func IsRoutable(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.Is4() {
		return false
	}
	for _, p := range unroutable {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// routableGroups returns a fresh copy of allRoutableGroups.
func routableGroups() [][2]byte {
	return slices.Clone(allRoutableGroups())
}

// allRoutableGroups returns, in ascending order, the first two octets of every
// IPv4 /16 that contains no address IsRoutable refuses. A /16 that is only
// partly unroutable (192.0/16, 198.51/16, 203.0/16 around the documentation
// /24s) is left out whole, which keeps the generator simple.
var allRoutableGroups = sync.OnceValue(func() [][2]byte {
	groups := make([][2]byte, 0, 1<<16)
next:
	for g := range 1 << 16 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(g >> 8), byte(g), 0, 0}), 16)
		for _, u := range unroutable {
			if u.Overlaps(p) {
				continue next
			}
		}
		groups = append(groups, [2]byte{byte(g >> 8), byte(g)})
	}
	return groups
})

// MaxRoutableAddrs is the largest n RoutableAddrs accepts: the number of IPv4
// /16 networks that are wholly routable (the 57,344 below 224.0.0.0 less 855
// that overlap an unroutable range).
const MaxRoutableAddrs = 56489

// RoutableAddrs returns n deterministic IPv4 addresses with port SeedPort that
// btcd's address manager stores: each is routable by btcd v0.26.2's
// addrmgr.IsRoutable, and each lies in a distinct /16.
//
// Why distinct /16s: btcd puts an address from a given source into one of
// 1,024 "new" buckets chosen by hashing a secret key with the address's /16
// (its GroupKey) and the source's group, reduced modulo 64 first, so all
// addresses one source sends land in at most 64 buckets, and all addresses of
// one /16 from one source land in the same bucket. A bucket holds at most 65
// addresses (btcd expires an old one only once a bucket has more than 64);
// further ones evict older ones. Every loopback source has the group "local",
// so everything seeded over loopback counts as one source. With each address in
// its own /16, addresses spread over the 64 buckets at random: 400 addresses
// put about 6 into each bucket, far from 65, so all of them are stored. From
// roughly 2,500 upward, some bucket overflows and the stored count falls
// short of n; the ceiling is 64 × 65 = 4,160.
//
// The same (n, seed) always gives the same slice, and RoutableAddrs(k, seed)
// is a prefix of RoutableAddrs(n, seed) for k ≤ n. It panics if n is negative
// or larger than MaxRoutableAddrs.
func RoutableAddrs(n int, seed int64) []netip.AddrPort {
	if n < 0 || n > MaxRoutableAddrs {
		panic(fmt.Sprintf("btcdtest.RoutableAddrs: n = %d, want 0..%d", n, MaxRoutableAddrs))
	}
	groups := routableGroups()
	rng := rand.New(rand.NewPCG(uint64(seed), 0x62746364_74657374)) // "btcdtest"
	out := make([]netip.AddrPort, n)
	for i := range n {
		// A partial Fisher-Yates shuffle: draw the i-th group from the
		// ones not drawn yet.
		j := i + rng.IntN(len(groups)-i)
		groups[i], groups[j] = groups[j], groups[i]
		g := groups[i]
		ip := netip.AddrFrom4([4]byte{g[0], g[1], byte(1 + rng.IntN(254)), byte(1 + rng.IntN(254))})
		out[i] = netip.AddrPortFrom(ip, SeedPort)
	}
	return out
}
