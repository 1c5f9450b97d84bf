package wire

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
)

// Magic is the four-byte network identifier that starts every frame, held as
// the little-endian uint32 of those bytes (mainnet f9 be b4 d9 is 0xd9b4bef9),
// the same convention btcd's BitcoinNet uses.
type Magic uint32

// Bytes returns the magic in wire order.
func (m Magic) Bytes() [4]byte {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(m))
	return b
}

// String renders the magic as the hex of its wire bytes, e.g. "f9beb4d9".
func (m Magic) String() string {
	b := m.Bytes()
	return fmt.Sprintf("%x", b[:])
}

// Network describes one Bitcoin network: its magic, default port and DNS seeds.
type Network struct {
	Name        string
	Magic       Magic
	DefaultPort uint16
	// DNSSeeds are host names whose A/AAAA records list reachable nodes.
	// btcpipe never resolves them in tests; see the crawler's allowlist.
	DNSSeeds []string
}

// The networks btcpipe knows.
var (
	Mainnet = Network{
		Name: "mainnet", Magic: 0xd9b4bef9, DefaultPort: 8333,
		DNSSeeds: []string{
			"seed.bitcoin.sipa.be",
			"dnsseed.bluematt.me",
			"seed.bitcoin.jonasschnelli.ch",
			"seed.btc.petertodd.net",
			"seed.bitcoin.sprovoost.nl",
			"dnsseed.emzy.de",
			"seed.bitcoin.wiz.biz",
			"seed.mainnet.achownodes.xyz",
		},
	}
	Testnet3 = Network{
		Name: "testnet3", Magic: 0x0709110b, DefaultPort: 18333,
		DNSSeeds: []string{
			"testnet-seed.bitcoin.jonasschnelli.ch",
			"seed.tbtc.petertodd.net",
			"seed.testnet.bitcoin.sprovoost.nl",
			"testnet-seed.bluematt.me",
			"seed.testnet.achownodes.xyz",
		},
	}
	Testnet4 = Network{
		Name: "testnet4", Magic: 0x283f161c, DefaultPort: 48333,
		DNSSeeds: []string{
			"seed.testnet4.bitcoin.sprovoost.nl",
			"seed.testnet4.wiz.biz",
		},
	}
	Signet = Network{
		Name: "signet", Magic: 0x40cf030a, DefaultPort: 38333,
		DNSSeeds: []string{
			"seed.signet.bitcoin.sprovoost.nl",
			"seed.signet.achownodes.xyz",
		},
	}
	Regtest = Network{Name: "regtest", Magic: 0xdab5bffa, DefaultPort: 18444}
	// Simnet is btcd's simulation network. btcd is strict there: it sends
	// reject and disconnects on any malformed message, which makes it a good
	// strict test peer.
	Simnet = Network{Name: "simnet", Magic: 0x12141c16, DefaultPort: 18555}
)

var networks = map[string]*Network{
	"mainnet": &Mainnet, "testnet3": &Testnet3, "testnet4": &Testnet4,
	"signet": &Signet, "regtest": &Regtest, "simnet": &Simnet,
}

// NetworkByName returns the network called name ("mainnet", "testnet3",
// "testnet4", "signet", "regtest" or "simnet"; "testnet" is an alias of
// "testnet3"). The result must not be modified.
func NetworkByName(name string) (*Network, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	if n == "testnet" {
		n = "testnet3"
	}
	if net, ok := networks[n]; ok {
		return net, nil
	}
	return nil, fmt.Errorf("wire: unknown network %q (want one of %s)", name, strings.Join(NetworkNames(), ", "))
}

// NetworkNames lists the names NetworkByName accepts, sorted.
func NetworkNames() []string {
	names := make([]string, 0, len(networks))
	for n := range networks {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
