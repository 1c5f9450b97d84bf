package stages

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/btcpipe/btcpipe/wire"
)

// fuzzMagic is the network the framer fuzz target frames for (regtest).
const fuzzMagic = wire.Magic(0xdab5bffa)

// fuzzFrame is a frame copied out of a batch (or out of the reference scan).
type fuzzFrame struct {
	hdr     wire.Header
	payload []byte
}

// fuzzReference scans the whole stream at once with wire.ScanFrame: the
// frames it holds, then either the error a header raised or the length of
// the incomplete tail.
func fuzzReference(stream []byte) (frames []fuzzFrame, tail int, err error) {
	buf := stream
	for {
		fr, n, err := wire.ScanFrame(buf, fuzzMagic)
		if err != nil {
			return frames, len(buf), err
		}
		if n == 0 {
			return frames, len(buf), nil
		}
		frames = append(frames, fuzzFrame{fr.Header, fr.Payload})
		buf = buf[n:]
	}
}

// fuzzSlab returns a slab of exactly size bytes holding one reference, the
// way NewSlab does but without rounding, so that a fuzz input can make
// slabs smaller than a header and every frame straddle them.
func fuzzSlab(size int) *Slab {
	s := &Slab{B: make([]byte, size)}
	s.refs.Store(1)
	return s
}

// FuzzFramerChunking feeds a byte stream to Framer.Push cut into arbitrary
// chunks, spread over slabs the way the reader spreads its reads (consecutive
// chunks of one slab are contiguous; a new slab starts when the chunk does
// not fit or the input asks for one), and checks that the framer agrees with
// one wire.ScanFrame pass over the whole stream:
//
//   - the frames it hands on are the reference's, in order, byte for byte
//     (all of them if the stream has no bad header, a prefix if it has);
//   - a bad header ends it with the reference's sentinel, wrapped in *Error
//     naming the peer, the framer stage and the command;
//   - otherwise the bytes it keeps pending are the reference's tail;
//   - every slab reference is released once the batches are, and the framer
//     reset (no leak, no double release).
//
// cuts gives the chunk lengths: 1+(b&0x7f) for each byte b, a new slab when
// b&0x80 is set; the stream's remainder is one last chunk. slabSize%8192 is
// the least size of a new slab (larger ones only slow the fuzzer down).
// fuzzFramer is what the fuzz target drives: either framer.
type fuzzFramer interface {
	Push(Chunk) (*Batch, error)
	Pending() int
	pendingBytes() []byte
	Reset()
}

func FuzzFramerChunking(f *testing.F) {
	f.Add(wire.AppendMessage(nil, fuzzMagic, &wire.Ping{Nonce: 7, HasNonce: true}), []byte{3, 0x85, 40}, uint16(64))
	f.Fuzz(func(t *testing.T, stream, cuts []byte, slabSize uint16) {
		wantFrames, wantTail, wantErr := fuzzReference(stream)

		// Both framers must cut exactly the reference's frames.
		for _, fr := range []fuzzFramer{
			NewFramer(Options{Peer: "fuzz:1", Magic: fuzzMagic, Hint: new(ReadHint)}),
			NewCopyFramer(Options{Peer: "fuzz:1", Magic: fuzzMagic}),
		} {
			var (
				slabs []*Slab // every slab made, to check the references
				cur   *Slab   // the "reader's" slab and its write offset
				w     int
				got   []fuzzFrame
				err   error
			)
			for off, i := 0, 0; off < len(stream) && err == nil; i++ {
				k, fresh := len(stream)-off, false
				if i < len(cuts) {
					k, fresh = min(k, 1+int(cuts[i]&0x7f)), cuts[i]&0x80 != 0
				}
				if cur == nil || fresh || len(cur.B)-w < k {
					if cur != nil {
						cur.Release()
					}
					cur, w = fuzzSlab(max(k, int(slabSize)%8192)), 0
					slabs = append(slabs, cur)
				}
				copy(cur.B[w:], stream[off:off+k])
				cur.Retain()
				var b *Batch
				b, err = fr.Push(Chunk{Slab: cur, Off: w, End: w + k})
				w, off = w+k, off+k
				if b != nil {
					if len(b.Frames) == 0 {
						t.Fatalf("Push returned an empty batch")
					}
					for _, f := range b.Frames {
						got = append(got, fuzzFrame{f.Header, bytes.Clone(f.Payload)})
					}
					b.Release()
				}
			}
			if cur != nil {
				cur.Release()
			}

			if len(got) > len(wantFrames) {
				t.Fatalf("framer cut %d frames, the stream holds %d", len(got), len(wantFrames))
			}
			for i := range got {
				if got[i].hdr != wantFrames[i].hdr {
					t.Fatalf("frame %d: header %+v, want %+v", i, got[i].hdr, wantFrames[i].hdr)
				}
				if !bytes.Equal(got[i].payload, wantFrames[i].payload) {
					t.Fatalf("frame %d (%s, %d bytes): payload differs from the stream's", i, got[i].hdr.CommandName(), len(got[i].payload))
				}
			}
			switch {
			case wantErr != nil:
				if err == nil {
					t.Fatalf("no error; the stream has a bad header (%v)", wantErr)
				}
				var se *Error
				if !errors.As(err, &se) || se.Peer != "fuzz:1" || se.Stage != StageFramer {
					t.Fatalf("error %v is not a *stages.Error naming peer fuzz:1 and stage framer", err)
				}
				var de *wire.DecodeError
				if !errors.As(wantErr, &de) || !errors.Is(err, de.Err) {
					t.Fatalf("error %v, want one wrapping %v", err, wantErr)
				}
				if se.Command != de.Command {
					t.Fatalf("error names command %q, want %q", se.Command, de.Command)
				}
			case err != nil:
				t.Fatalf("error %v; the stream has no bad header", err)
			default:
				if len(got) != len(wantFrames) {
					t.Fatalf("framer cut %d frames, want %d", len(got), len(wantFrames))
				}
				if fr.Pending() != wantTail {
					t.Fatalf("framer holds %d bytes pending, want %d", fr.Pending(), wantTail)
				}
				if wantTail > 0 && !bytes.Equal(fr.pendingBytes(), stream[len(stream)-wantTail:]) {
					t.Fatalf("pending bytes differ from the stream's tail")
				}
			}
			fr.Reset()
			if fr.Pending() != 0 {
				t.Fatalf("Pending() = %d after Reset", fr.Pending())
			}
			for i, s := range slabs {
				if n := s.refs.Load(); n != 0 {
					t.Fatalf("slab %d of %d has %d references left", i, len(slabs), n)
				}
			}
		}
	})
}

// FuzzFramerSkip: with a set of wanted commands, each framer cuts exactly
// the wanted frames of what it cuts without one, and fails the same way.
// cuts lays the stream out in chunks as FuzzFramerChunking does (in one slab).
func FuzzFramerSkip(f *testing.F) {
	seed := wire.AppendMessage(nil, fuzzMagic, &wire.Ping{Nonce: 7, HasNonce: true})
	seed = wire.AppendMessage(seed, fuzzMagic, &wire.Raw{Cmd: wire.CmdBlock, Payload: make([]byte, 300)})
	seed = wire.AppendMessage(seed, fuzzMagic, &wire.Verack{})
	f.Add(seed, []byte{3, 40, 100, 7})
	want, err := NewWants(wire.CmdPing, wire.CmdVerack, wire.CmdAddr)
	if err != nil {
		f.Fatal(err)
	}
	run := func(fr fuzzFramer, stream, cuts []byte) (cmds []string, payloads [][]byte, err error) {
		slab := fuzzSlab(max(len(stream), 1))
		copy(slab.B, stream)
		for off, i := 0, 0; off < len(stream) && err == nil; i++ {
			k := len(stream) - off
			if i < len(cuts) {
				k = min(k, 1+int(cuts[i]))
			}
			slab.Retain()
			var b *Batch
			b, err = fr.Push(Chunk{Slab: slab, Off: off, End: off + k})
			off += k
			if b != nil {
				for _, f := range b.Frames {
					cmds = append(cmds, f.CommandName())
					payloads = append(payloads, bytes.Clone(f.Payload))
				}
				b.Release()
			}
		}
		fr.Reset()
		slab.Release()
		if n := slab.refs.Load(); n != 0 {
			return nil, nil, fmt.Errorf("slab has %d references left", n)
		}
		return cmds, payloads, err
	}
	f.Fuzz(func(t *testing.T, stream, cuts []byte) {
		for _, mk := range []func(Options) fuzzFramer{
			func(o Options) fuzzFramer { return NewFramer(o) },
			func(o Options) fuzzFramer { return NewCopyFramer(o) },
		} {
			allCmds, allPayloads, allErr := run(mk(Options{Magic: fuzzMagic, Hint: new(ReadHint)}), stream, cuts)
			cmds, payloads, err := run(mk(Options{Magic: fuzzMagic, Hint: new(ReadHint), Want: want}), stream, cuts)
			var wantCmds []string
			var wantPayloads [][]byte
			for i, c := range allCmds {
				var raw [wire.CommandSize]byte
				copy(raw[:], c)
				if want.Has(&raw) {
					wantCmds = append(wantCmds, c)
					wantPayloads = append(wantPayloads, allPayloads[i])
				}
			}
			if !slices.Equal(cmds, wantCmds) || !slices.EqualFunc(payloads, wantPayloads, bytes.Equal) {
				t.Fatalf("with Want: %v; without, filtered: %v", cmds, wantCmds)
			}
			if fmt.Sprint(err) != fmt.Sprint(allErr) {
				t.Fatalf("with Want: error %v; without: %v", err, allErr)
			}
		}
	})
}
