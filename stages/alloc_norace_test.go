//go:build !race

package stages

import (
	"context"
	"testing"
	"time"

	"github.com/btcpipe/btcpipe/wire"
)

// TestFramerVerifierAllocateNothing checks the framing hot path's claim: once
// warm, cutting a chunk of ping frames into a batch, verifying it and
// releasing it allocates nothing. (Allocation counts mean nothing under the
// race detector, so this file builds only without it; make test runs it.)
func TestFramerVerifierAllocateNothing(t *testing.T) {
	var stream []byte
	for i := range 2000 {
		stream = wire.AppendMessage(stream, wire.Mainnet.Magic, &wire.Ping{Nonce: uint64(i), HasNonce: true})
	}
	slab := &Slab{B: stream}
	slab.refs.Store(1 << 30) // never returned to a pool: the test owns it
	for _, f := range []fuzzFramer{NewFramer(Options{Magic: wire.Mainnet.Magic}), NewCopyFramer(Options{Magic: wire.Mainnet.Magic})} {
		framerAllocs(t, f, slab, stream)
	}
}

func framerAllocs(t *testing.T, f fuzzFramer, slab *Slab, stream []byte) {
	pass := func() {
		for off := 0; off < len(stream); off += 4096 { // 4 KiB reads, frames split across them
			slab.Retain()
			b, err := f.Push(Chunk{Slab: slab, Off: off, End: min(off+4096, len(stream))})
			if err != nil {
				t.Fatal(err)
			}
			if b != nil {
				VerifyBatch(b, NopObserver{})
				b.Release()
			}
		}
	}
	pass() // warm the batch pool
	if got := testing.AllocsPerRun(20, pass); got != 0 {
		t.Errorf("%T + verifier allocated %.1f times per pass of 2,000 pings, want 0", f, got)
	}
}

// TestBudgetAcquireWithRoomAllocatesNothing: taking room that is there at
// once (every read of a connection under its budget) costs no timer and no
// context.
func TestBudgetAcquireWithRoomAllocatesNothing(t *testing.T) {
	process := NewBudget("process", 1<<30, nil)
	conn := NewBudget("connection", 1<<20, process)
	ctx := context.Background()
	if got := testing.AllocsPerRun(100, func() {
		if err := conn.Acquire(ctx, MinSlab, time.Minute); err != nil {
			t.Fatal(err)
		}
		conn.Release(MinSlab)
	}); got != 0 {
		t.Errorf("Acquire with room allocated %.1f times, want 0", got)
	}
}
