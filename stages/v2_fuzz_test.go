package stages

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/btcpipe/btcpipe/bip324"
	"github.com/btcpipe/btcpipe/wire"
)

// FuzzV2Chunking feeds a fixed stream of BIP324 packets (messages of several
// sizes and a decoy) to V2Framer and V2Verifier cut into chunks and slabs the
// input chooses, optionally with one byte flipped where the input says, and
// checks: without the flip, every message comes out as sent, in order;
// with it, the stream ends in an error or in messages that are a prefix of
// those sent (never a message that was not sent); every slab reference is
// released; nothing panics.
func FuzzV2Chunking(f *testing.F) {
	f.Add([]byte{0, 0, 0, 3, 5, 1, 200})
	f.Add([]byte{1, 0, 40, 1, 1, 1, 1, 1})
	f.Add([]byte{1, 3, 255, 64, 0, 64})
	l, p := [32]byte{7}, [32]byte{6}
	s := bip324.NewSender(l, p)
	type msg struct {
		cmd     string
		payload []byte
	}
	var sent []msg
	var stream []byte
	for i, n := range []int{0, 8, 300, 5000, 1, 70_000, 2} {
		cmd := []string{wire.CmdVerack, wire.CmdPing, wire.CmdTx, "somecommand", wire.CmdTx, wire.CmdBlock, wire.CmdTx}[i]
		pl := bytes.Repeat([]byte{byte(i + 1)}, n)
		stream, _ = s.AppendMessage(stream, cmd, pl)
		sent = append(sent, msg{cmd, pl})
		if i == 2 {
			stream = s.AppendPacket(stream, []byte("decoy"), nil, true)
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 3 {
			return
		}
		work := bytes.Clone(stream)
		flip := in[0]&1 == 1
		if flip {
			work[int(binary.BigEndian.Uint16(in[1:3]))%len(work)] ^= 0x01
		}
		sizes := in[3:]
		recv := bip324.NewReceiver(l, p)
		fr := NewV2Framer(recv, Options{Peer: "fuzz", Magic: fuzzMagic})
		v := NewV2Verifier(recv, Options{Peer: "fuzz", Magic: fuzzMagic})
		var slabs []*Slab
		var batches []*Batch
		var got []msg
		var err error
		var slab *Slab
		w := 0
		for pos, i := 0, 0; pos < len(work) && err == nil; i++ {
			n := len(work) - pos
			if len(sizes) > 0 {
				n = min(n, 1+int(sizes[i%len(sizes)])*int(sizes[i%len(sizes)]))
			}
			if slab == nil || w+n > len(slab.B) || (len(sizes) > 0 && sizes[i%len(sizes)]%7 == 0) {
				if slab != nil {
					slab.Release()
				}
				slab = fuzzSlab(max(n, 16))
				slabs = append(slabs, slab)
				w = 0
			}
			copy(slab.B[w:], work[pos:pos+n])
			slab.Retain()
			var b *Batch
			b, err = fr.Push(Chunk{Slab: slab, Off: w, End: w + n})
			if b != nil {
				if verr := v.Open(b); verr != nil && err == nil {
					err = verr
				}
				batches = append(batches, b)
			}
			w += n
			pos += n
		}
		if slab != nil {
			slab.Release()
		}
		for _, b := range batches {
			for _, f := range b.Frames {
				got = append(got, msg{f.CommandName(), bytes.Clone(f.Payload)})
			}
			b.Release()
		}
		pending := fr.Pending()
		fr.Reset()
		for i, s := range slabs {
			if r := s.refs.Load(); r != 0 {
				t.Fatalf("slab %d: %d references left", i, r)
			}
		}
		if len(got) > len(sent) {
			t.Fatalf("%d messages out of %d sent", len(got), len(sent))
		}
		for i := range got {
			if got[i].cmd != sent[i].cmd || !bytes.Equal(got[i].payload, sent[i].payload) {
				t.Fatalf("message %d: %s of %d bytes, sent %s of %d", i, got[i].cmd, len(got[i].payload), sent[i].cmd, len(sent[i].payload))
			}
		}
		if !flip && (err != nil || len(got) != len(sent) || pending != 0) {
			t.Fatalf("intact stream: %d of %d messages, %v", len(got), len(sent), err)
		}
	})
}
