//go:build !race

package stages

import (
	"testing"

	"github.com/btcpipe/btcpipe/bip324"
	"github.com/btcpipe/btcpipe/wire"
)

// TestV2FramerVerifierAllocateNothing: once warm, cutting BIP324 packets of
// pings (split across 4 KiB reads), opening them in place and releasing
// the batches allocates nothing.
func TestV2FramerVerifierAllocateNothing(t *testing.T) {
	l, p := [32]byte{1}, [32]byte{2}
	s := bip324.NewSender(l, p)
	var sealed []byte
	for i := range 2000 {
		var err error
		if sealed, err = s.AppendMessage(sealed, wire.CmdPing, []byte{byte(i), 0, 0, 0, 0, 0, 0, 0}); err != nil {
			t.Fatal(err)
		}
	}
	slab := &Slab{B: make([]byte, len(sealed))}
	slab.refs.Store(1 << 30)
	recv := bip324.NewReceiver(l, p)
	base := *recv
	f := NewV2Framer(recv, Options{Magic: wire.Mainnet.Magic})
	v := NewV2Verifier(recv, Options{Magic: wire.Mainnet.Magic})
	pass := func() {
		copy(slab.B, sealed) // the last pass decrypted it in place
		*recv = base
		for off := 0; off < len(sealed); off += 4096 {
			slab.Retain()
			b, err := f.Push(Chunk{Slab: slab, Off: off, End: min(off+4096, len(sealed))})
			if err != nil {
				t.Fatal(err)
			}
			if b != nil {
				if err := v.Open(b); err != nil {
					t.Fatal(err)
				}
				b.Release()
			}
		}
	}
	pass()
	if got := testing.AllocsPerRun(20, pass); got != 0 {
		t.Errorf("v2 framer + verifier allocated %.1f times per pass of 2,000 pings, want 0", got)
	}
}
