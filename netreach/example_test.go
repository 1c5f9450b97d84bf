package netreach_test

import (
	"fmt"

	"github.com/btcpipe/btcpipe/netreach"
	"github.com/btcpipe/btcpipe/wire"
)

// ExampleDialer_Route shows how a crawler decides, before dialling, which
// addresses a configuration reaches and what to record for the others.
func ExampleDialer_Route() {
	var key [32]byte
	for i := range key {
		key[i] = byte(i)
	}
	onion := wire.TorV3Host(key) + ":8333"
	garlic := wire.NetAddrV2{Network: wire.NetI2P}.WithKey(key).Host()

	onlynet, _ := netreach.ParseOnlyNet("ipv4,onion,i2p,cjdns")
	d, err := netreach.New(netreach.Config{TorProxy: "127.0.0.1:9050", OnlyNet: onlynet})
	if err != nil {
		panic(err)
	}
	defer d.Close()
	for _, s := range []string{"1.2.3.4:8333", "[2001:db8::1]:8333", onion, garlic, "[fc00::1]:8333"} {
		a, _, err := netreach.ParsePeer(s, 8333)
		if err != nil {
			panic(err)
		}
		via, err := d.Route(a)
		if err != nil {
			fmt.Printf("%-5v not dialled: %v\n", a.Network, err)
			continue
		}
		fmt.Printf("%-5v via %v\n", a.Network, via)
	}
	// Output:
	// ipv4  via direct
	// ipv6  not dialled: onlynet excludes ipv6
	// torv3 via tor
	// i2p   not dialled: i2p: no SAM bridge configured
	// cjdns not dialled: cjdns: not reachable (no route into fc00::/8 configured)
}
