package peer

import (
	"math/rand/v2"
	"sync"
)

// Nonces holds the version nonces of a process's open sessions, so that a
// peer's version carrying one of them is recognised as a connection to
// ourselves. The zero value is ready to use.
type Nonces struct {
	mu  sync.Mutex
	set map[uint64]struct{}
}

// New returns a fresh random nonce and remembers it.
func (n *Nonces) New() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.set == nil {
		n.set = map[uint64]struct{}{}
	}
	for {
		v := rand.Uint64()
		if _, dup := n.set[v]; !dup && v != 0 {
			n.set[v] = struct{}{}
			return v
		}
	}
}

// Has reports whether v is one of ours.
func (n *Nonces) Has(v uint64) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.set[v]
	return ok
}

// Forget drops v.
func (n *Nonces) Forget(v uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.set, v)
}
