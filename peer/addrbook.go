package peer

import (
	"sync"

	"github.com/btcpipe/btcpipe/wire"
)

// DefaultMaxAddrs bounds an AddrBook unless told otherwise: about 10 MB at
// most, far more than any one peer should tell us.
const DefaultMaxAddrs = 100_000

// AddrBook is the set of unique addresses learned, bounded so that a peer
// flooding us with addr messages cannot grow it without limit: past Max new
// addresses are counted as seen but not kept. Safe for concurrent use.
type AddrBook struct {
	Max int

	mu      sync.Mutex
	set     map[string]struct{}
	total   int
	dropped int
}

// NewAddrBook returns a book holding at most max addresses.
func NewAddrBook(max int) *AddrBook {
	if max <= 0 {
		max = DefaultMaxAddrs
	}
	return &AddrBook{Max: max, set: map[string]struct{}{}}
}

// Add records list and returns how many were new, and the book's size.
func (b *AddrBook) Add(list []wire.NetAddrV2) (added, unique int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total += len(list)
	for i := range list {
		key := list[i].String()
		if _, ok := b.set[key]; ok {
			continue
		}
		if len(b.set) >= b.Max {
			b.dropped++
			continue
		}
		b.set[key] = struct{}{}
		added++
	}
	return added, len(b.set)
}

// Len returns the number of unique addresses kept.
func (b *AddrBook) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.set)
}

// Has reports whether the book holds addr (as NetAddrV2.String renders it).
func (b *AddrBook) Has(addr string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.set[addr]
	return ok
}
