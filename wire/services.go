package wire

import (
	"fmt"
	"math/bits"
	"strings"
)

// ServiceFlag is the bit set of services a node advertises.
type ServiceFlag uint64

// Service bits, named as Bitcoin Core names them.
const (
	NodeNetwork        ServiceFlag = 1 << 0  // NODE_NETWORK: serves the full chain
	NodeGetUTXO        ServiceFlag = 1 << 1  // NODE_GETUTXO (BIP64, retired)
	NodeBloom          ServiceFlag = 1 << 2  // NODE_BLOOM (BIP111)
	NodeWitness        ServiceFlag = 1 << 3  // NODE_WITNESS (BIP144)
	NodeXThin          ServiceFlag = 1 << 4  // NODE_XTHIN (never in Core)
	NodeCompactFilters ServiceFlag = 1 << 6  // NODE_COMPACT_FILTERS (BIP157)
	NodeNetworkLimited ServiceFlag = 1 << 10 // NODE_NETWORK_LIMITED (BIP159)
	NodeP2PV2          ServiceFlag = 1 << 11 // NODE_P2P_V2 (BIP324)
)

var serviceNames = map[ServiceFlag]string{
	NodeNetwork:        "NODE_NETWORK",
	NodeGetUTXO:        "NODE_GETUTXO",
	NodeBloom:          "NODE_BLOOM",
	NodeWitness:        "NODE_WITNESS",
	NodeXThin:          "NODE_XTHIN",
	NodeCompactFilters: "NODE_COMPACT_FILTERS",
	NodeNetworkLimited: "NODE_NETWORK_LIMITED",
	NodeP2PV2:          "NODE_P2P_V2",
}

// Names returns the name of every bit set in s, lowest bit first; an unnamed
// bit is rendered as "BIT_n".
func (s ServiceFlag) Names() []string {
	names := make([]string, 0, bits.OnesCount64(uint64(s)))
	for v := uint64(s); v != 0; v &= v - 1 {
		bit := ServiceFlag(1) << bits.TrailingZeros64(v)
		if name, ok := serviceNames[bit]; ok {
			names = append(names, name)
		} else {
			names = append(names, fmt.Sprintf("BIT_%d", bits.TrailingZeros64(v)))
		}
	}
	return names
}

// String joins Names with "|", or returns "NONE" for no services.
func (s ServiceFlag) String() string {
	if s == 0 {
		return "NONE"
	}
	return strings.Join(s.Names(), "|")
}
