package stages_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/btcpipe/btcpipe/bip324"
	"github.com/btcpipe/btcpipe/stages"
	"github.com/btcpipe/btcpipe/wire"
)

var v2l, v2p = [32]byte{9}, [32]byte{8}

// v2Message is one message of a v2 test stream; decoy marks a decoy packet.
type v2Message struct {
	cmd     string
	payload []byte
	decoy   bool
}

// v2Stream seals ms as packets, in order.
func v2Stream(t *testing.T, ms []v2Message) []byte {
	t.Helper()
	s := bip324.NewSender(v2l, v2p)
	var out []byte
	for _, m := range ms {
		if m.decoy {
			out = s.AppendPacket(out, m.payload, nil, true)
			continue
		}
		var err error
		if out, err = s.AppendMessage(out, m.cmd, m.payload); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// v2Messages is the handshake's messages, raw messages of sizes that cross
// a slab (over MinSlab), and decoys between them.
func v2Messages(r *rand.Rand) []v2Message {
	var ms []v2Message
	for _, m := range handshakeMessages() {
		ms = append(ms, v2Message{cmd: m.Command(), payload: m.AppendPayload(nil)})
	}
	for i := range 12 {
		p := make([]byte, []int{0, 1, 200, 70_000, 3, 150_000}[i%6])
		for j := range p {
			p[j] = byte(r.Uint32())
		}
		cmd := []string{wire.CmdTx, wire.CmdBlock, "longcommand1", wire.CmdHeaders}[i%4]
		ms = append(ms, v2Message{cmd: cmd, payload: p})
		if i%3 == 0 {
			ms = append(ms, v2Message{payload: make([]byte, 1+r.IntN(100)), decoy: true})
		}
	}
	return ms
}

// v2Frame pushes stream through a V2Framer and a V2Verifier as l lays it
// out (see frameStreamWith), holding every batch to the end, and returns
// the messages, the first error and the decoys counted.
func v2Frame(t *testing.T, stream []byte, l layout) (got []v2Message, decoys int64, err error) {
	t.Helper()
	recv := bip324.NewReceiver(v2l, v2p)
	opts := stages.Options{Peer: "test", Magic: magic}
	f, v := stages.NewV2Framer(recv, opts), stages.NewV2Verifier(recv, opts)
	var tracker slabTracker
	var batches []*stages.Batch
	pos := 0
push:
	for _, g := range l.groups {
		total := 0
		for _, n := range g {
			total += n
		}
		s := stages.NewSlab(l.off + total)
		tracker.add(s)
		copy(s.B[l.off:], stream[pos:pos+total])
		w := l.off
		for _, n := range g {
			s.Retain()
			b, perr := f.Push(stages.Chunk{Slab: s, Off: w, End: w + n})
			w += n
			if b != nil {
				tracker.add(b.Slabs()...)
				if verr := v.Open(b); verr != nil && perr == nil {
					perr = verr
				}
				batches = append(batches, b)
			}
			if perr != nil {
				err = perr
				s.Release()
				break push
			}
		}
		s.Release()
		pos += total
	}
	for _, b := range batches { // payloads still valid: every batch held
		for i := range b.Frames {
			got = append(got, v2Message{cmd: b.Frames[i].CommandName(), payload: bytes.Clone(b.Frames[i].Payload)})
		}
	}
	for _, b := range batches {
		b.Release()
	}
	if err == nil && f.Pending() != 0 {
		t.Errorf("framer holds %d pending bytes at the end of a whole stream", f.Pending())
	}
	f.Reset()
	tracker.check(t)
	return got, v.Decoys(), err
}

func TestV2FramerSplits(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 24))
	ms := v2Messages(r)
	stream := v2Stream(t, ms)
	var want []v2Message
	wantDecoys := int64(0)
	for _, m := range ms {
		if m.decoy {
			wantDecoys++
			continue
		}
		want = append(want, m)
	}
	check := func(t *testing.T, l layout) {
		t.Helper()
		got, decoys, err := v2Frame(t, stream, l)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) || decoys != wantDecoys {
			t.Fatalf("%d messages and %d decoys, want %d and %d", len(got), decoys, len(want), wantDecoys)
		}
		for i := range want {
			if got[i].cmd != want[i].cmd || !bytes.Equal(got[i].payload, want[i].payload) {
				t.Fatalf("message %d: %s of %d bytes, want %s of %d", i, got[i].cmd, len(got[i].payload), want[i].cmd, len(want[i].payload))
			}
		}
	}
	t.Run("one slab, one chunk", func(t *testing.T) { check(t, sameSlab(len(stream))) })
	// The first packets a byte at a time, each in a slab of its own: the
	// length split at every offset, the assembly path for every packet.
	head := 300
	t.Run("bytes in slabs of their own", func(t *testing.T) {
		check(t, slabEach(1, append(ones(head), len(stream)-head)...))
	})
	t.Run("bytes in one slab", func(t *testing.T) { check(t, sameSlab(append(ones(head), len(stream)-head)...)) })
	// Random layouts, three of each chunk size: the smallest cut every
	// length at random offsets (more of them only slow the race detector,
	// which this single-goroutine test gives nothing to).
	for i := range 12 {
		l := randomLayout(r, len(stream), []int{3, 50, 5000, 70_000}[i%4])
		t.Run("random", func(t *testing.T) { check(t, l) })
	}
}

// TestV2VerifierBadTag: a bad tag ends the stream with ErrBadTag, after the
// messages before it.
func TestV2VerifierBadTag(t *testing.T) {
	ms := []v2Message{{cmd: wire.CmdVerack}, {cmd: wire.CmdPing, payload: make([]byte, 8)}, {cmd: wire.CmdTx, payload: []byte{1, 2, 3}}, {cmd: wire.CmdVerack}}
	stream := v2Stream(t, ms)
	bad := bip324.PacketLen(1) + bip324.PacketLen(9) + bip324.PacketLen(4) - 1 // the tx packet's last tag byte
	stream[bad] ^= 0x40
	got, _, err := v2Frame(t, stream, sameSlab(len(stream)))
	var se *stages.Error
	if !errors.Is(err, bip324.ErrBadTag) || !errors.As(err, &se) || se.Stage != stages.StageVerifier || se.Peer != "test" {
		t.Fatalf("err %v, want a verifier *stages.Error wrapping ErrBadTag", err)
	}
	if len(got) != 2 || got[0].cmd != wire.CmdVerack || got[1].cmd != wire.CmdPing {
		t.Errorf("got %v, want verack and ping before the damage", got)
	}
}

// TestV2FramerTooLarge: a length over the receive limit is refused as soon
// as its 3 bytes are there.
func TestV2FramerTooLarge(t *testing.T) {
	s := bip324.NewSender(v2l, v2p)
	pkt := s.AppendPacket(nil, make([]byte, 1000), nil, false)
	recv := bip324.NewReceiver(v2l, v2p)
	recv.SetMaxContents(999)
	f := stages.NewV2Framer(recv, stages.Options{Peer: "test", Magic: magic})
	slab := stages.NewSlab(len(pkt))
	copy(slab.B, pkt)
	b, err := f.Push(stages.Chunk{Slab: slab, Off: 0, End: bip324.LengthSize})
	if b != nil || !errors.Is(err, bip324.ErrPacketTooLarge) {
		t.Fatalf("batch %v, err %v; want ErrPacketTooLarge from the length alone", b, err)
	}
	f.Reset()
}

// TestV2WriterRoundTrip: what the v2 writer encodes, our framer and
// verifier read back, and observers see the v1 layout.
func TestV2WriterRoundTrip(t *testing.T) {
	obs := new(recorder)
	w := stages.NewV2Writer(nil, bip324.NewSender(v2l, v2p), stages.Options{Magic: magic, Observer: obs})
	var stream []byte
	var want []v2Message
	for _, m := range handshakeMessages() {
		var err error
		if stream, err = w.Encode(stream, m); err != nil {
			t.Fatal(err)
		}
		want = append(want, v2Message{cmd: m.Command(), payload: m.AppendPayload(nil)})
	}
	got, _, err := v2Frame(t, stream, sameSlab(len(stream)))
	if err != nil || len(got) != len(want) {
		t.Fatalf("%d messages, %v; want %d", len(got), err, len(want))
	}
	for i := range want {
		if got[i].cmd != want[i].cmd || !bytes.Equal(got[i].payload, want[i].payload) {
			t.Errorf("message %d: %s, want %s", i, got[i].cmd, want[i].cmd)
		}
		if f := obs.framesOut[i]; !bytes.Equal(f[wire.HeaderSize:], want[i].payload) || string(bytes.TrimRight(f[4:16], "\x00")) != want[i].cmd {
			t.Errorf("observer saw frame %d as %q", i, f[4:16])
		}
	}
}
