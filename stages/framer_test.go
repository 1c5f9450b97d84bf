package stages_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/btcpipe/btcpipe/stages"
	"github.com/btcpipe/btcpipe/wire"
)

// layout says how a stream reaches the framer: each group is one slab (as
// the reader fills one slab with consecutive reads), each size one chunk
// (one read) in it. off is where the first chunk starts in each slab.
type layout struct {
	groups [][]int
	off    int
}

// sameSlab puts every chunk in one slab: the framer's contiguous path.
func sameSlab(sizes ...int) layout { return layout{groups: [][]int{sizes}} }

// slabEach puts each chunk in a slab of its own: a frame split between two
// chunks goes through the framer's assembly path.
func slabEach(off int, sizes ...int) layout {
	l := layout{off: off}
	for _, n := range sizes {
		l.groups = append(l.groups, []int{n})
	}
	return l
}

// ones returns n ones.
func ones(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = 1
	}
	return s
}

// randomLayout cuts n bytes in chunks of 1 to maxChunk bytes and starts a
// new slab before a chunk with probability 1/3.
func randomLayout(r *rand.Rand, n, maxChunk int) layout {
	var l layout
	l.off = r.IntN(3)
	var group []int
	for n > 0 {
		k := min(n, 1+r.IntN(maxChunk))
		if len(group) > 0 && r.IntN(3) == 0 {
			l.groups = append(l.groups, group)
			group = nil
		}
		group = append(group, k)
		n -= k
	}
	return layout{groups: append(l.groups, group), off: l.off}
}

// framed is what a framer made of a stream.
type framed struct {
	bytes    []byte   // every frame out, re-encoded as received, in order
	commands []string // their commands
	err      error    // the first error Push returned
}

// frameStream pushes stream through a new framer as l lays it out, like the
// reader would: each chunk carries a reference, and the slab's own
// reference is dropped when the next slab starts. It holds every batch
// until the end (so payloads must stay valid while referenced), then
// releases them and checks that every slab seen had every reference
// returned.
//
// It does that with each framer and fails the test unless the copying one
// cut the same frames with the same error as the slab one, whose result it
// returns.
func frameStream(t *testing.T, opts stages.Options, stream []byte, l layout) framed {
	t.Helper()
	want := frameStreamWith(t, stages.NewFramer(opts), stream, l)
	quiet := opts
	quiet.Observer = nil // the test's observer counts the slab framer's frames
	if got := frameStreamWith(t, stages.NewCopyFramer(quiet), stream, l); !sameFramed(got, want) {
		t.Errorf("copy framer: %d commands %v, error %v; slab framer: %d commands, error %v",
			len(got.commands), got.commands, got.err, len(want.commands), want.err)
	}
	return want
}

func sameFramed(a, b framed) bool {
	return slices.Equal(a.commands, b.commands) && bytes.Equal(a.bytes, b.bytes) && fmt.Sprint(a.err) == fmt.Sprint(b.err)
}

// testFramer is either framer, as frameStream and runFramer drive them.
type testFramer interface {
	Push(stages.Chunk) (*stages.Batch, error)
	Pending() int
	Reset()
	Run(ctx context.Context, in <-chan stages.Chunk, out chan<- *stages.Batch) error
}

func frameStreamWith(t *testing.T, f testFramer, stream []byte, l layout) framed {
	t.Helper()
	var (
		tracker slabTracker
		batches []*stages.Batch
		out     framed
		pos     int
	)
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
			b, err := f.Push(stages.Chunk{Slab: s, Off: w, End: w + n})
			w += n
			if sf, ok := f.(*stages.Framer); ok {
				tracker.add(sf.PendingSlab())
			}
			if b != nil { // with an error: the frames before the damage
				if len(b.Frames) == 0 {
					t.Errorf("Push returned an empty batch")
				}
				tracker.add(b.Slabs()...)
				batches = append(batches, b)
			}
			if err != nil {
				out.err = err
				s.Release()
				break push
			}
		}
		s.Release() // the reader moves on to a new slab
		pos += total
	}
	for _, b := range batches {
		for i := range b.Frames {
			out.bytes = frameBytes(out.bytes, &b.Frames[i])
			out.commands = append(out.commands, b.Frames[i].CommandName())
		}
	}
	for _, b := range batches {
		b.Release()
	}
	if out.err == nil {
		if got := f.Pending(); got != 0 {
			t.Errorf("framer holds %d pending bytes at the end of a whole stream, want 0", got)
		}
	}
	f.Reset()
	tracker.check(t)
	return out
}

func TestFramerSplits(t *testing.T) {
	msgs := handshakeMessages()
	stream := handshakeStream()
	wantCmds := commandsOf(msgs)
	check := func(t *testing.T, l layout) {
		t.Helper()
		obs := new(recorder)
		got := frameStream(t, stages.Options{Magic: magic, Observer: obs}, stream, l)
		if got.err != nil {
			t.Fatalf("Push: %v", got.err)
		}
		if !bytes.Equal(got.bytes, stream) {
			t.Fatalf("frames out differ from the frames in:\n got %x\nwant %x", got.bytes, stream)
		}
		if !slices.Equal(got.commands, wantCmds) {
			t.Errorf("commands = %v, want %v", got.commands, wantCmds)
		}
		if !slices.Equal(obs.framesIn, wantCmds) {
			t.Errorf("Observer.FrameIn saw %v, want %v", obs.framesIn, wantCmds)
		}
	}
	t.Run("coalesced", func(t *testing.T) { check(t, sameSlab(len(stream))) })
	t.Run("one byte per chunk/same slab", func(t *testing.T) { check(t, sameSlab(ones(len(stream))...)) })
	t.Run("one byte per chunk/slab each", func(t *testing.T) { check(t, slabEach(0, ones(len(stream))...)) })
	t.Run("two chunks/same slab", func(t *testing.T) {
		for k := 1; k < len(stream); k++ {
			check(t, sameSlab(k, len(stream)-k))
		}
	})
	for _, off := range []int{0, 5} {
		t.Run("two chunks/two slabs/offset "+string(rune('0'+off)), func(t *testing.T) {
			for k := 1; k < len(stream); k++ {
				check(t, slabEach(off, k, len(stream)-k))
			}
		})
	}
	t.Run("three chunks/slab each", func(t *testing.T) {
		// Every split of the version frame (the first) into three pieces
		// that meet inside it, the rest of the stream in the last chunk.
		first := wire.HeaderSize + int(binary.LittleEndian.Uint32(stream[16:20]))
		for i := 1; i < first; i++ {
			for j := i + 1; j <= first; j += 7 {
				check(t, slabEach(0, i, j-i, len(stream)-j))
			}
		}
	})
	t.Run("random", func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		for range 200 {
			check(t, randomLayout(r, len(stream), 64))
		}
	})
}

// TestFramerLargeFrames crosses frames larger than a slab (MinSlab) and
// near the limit with chunk and slab boundaries.
func TestFramerLargeFrames(t *testing.T) {
	big := make([]byte, 3*stages.MinSlab+17)
	for i := range big {
		big[i] = byte(i * 7)
	}
	huge := make([]byte, wire.MaxPayload)
	huge[0], huge[len(huge)-1] = 1, 2
	stream := encode(&wire.Verack{}, &wire.Raw{Cmd: wire.CmdTx, Payload: big}, &wire.Ping{Nonce: 1, HasNonce: true},
		&wire.Raw{Cmd: wire.CmdBlock, Payload: huge}, &wire.Pong{Nonce: 2})
	wantCmds := []string{"verack", "tx", "ping", "block", "pong"}
	r := rand.New(rand.NewPCG(3, 4))
	layouts := map[string]layout{
		"coalesced":          sameSlab(len(stream)),
		"reads of 4 KiB":     sameSlab(splitEvery(len(stream), 4<<10)...),
		"slabs of 64 KiB":    slabEach(0, splitEvery(len(stream), stages.MinSlab)...),
		"slabs of 9999":      slabEach(3, splitEvery(len(stream), 9999)...),
		"header split":       slabEach(0, 24+10, 24+len(big)-10+3, len(stream)-(24+24+len(big)+3)),
		"random 100 KiB":     randomLayout(r, len(stream), 100<<10),
		"random 1 MiB":       randomLayout(r, len(stream), 1<<20),
		"one frame per slab": slabEach(0, 24, 24+len(big), 32, 24+len(huge), 32),
	}
	for name, l := range layouts {
		t.Run(name, func(t *testing.T) {
			got := frameStream(t, stages.Options{Magic: magic}, stream, l)
			if got.err != nil {
				t.Fatalf("Push: %v", got.err)
			}
			if !slices.Equal(got.commands, wantCmds) {
				t.Fatalf("commands = %v, want %v", got.commands, wantCmds)
			}
			if !bytes.Equal(got.bytes, stream) {
				t.Fatalf("frames out (%d bytes) differ from the frames in (%d bytes)", len(got.bytes), len(stream))
			}
		})
	}
}

func splitEvery(n, k int) []int {
	var s []int
	for ; n > k; n -= k {
		s = append(s, k)
	}
	return append(s, n)
}

// header returns a 24-byte frame header with the given fields.
func header(m wire.Magic, cmd string, length uint32) []byte {
	h := make([]byte, wire.HeaderSize)
	binary.LittleEndian.PutUint32(h[0:4], uint32(m))
	copy(h[4:16], cmd)
	binary.LittleEndian.PutUint32(h[16:20], length)
	copy(h[20:24], wire.EmptyChecksum[:])
	return h
}

func TestFramerRefusesBadHeaders(t *testing.T) {
	good := encode(&wire.Verack{}, &wire.Ping{Nonce: 5, HasNonce: true})
	tests := []struct {
		name    string
		bad     []byte // a header, and at most a few payload bytes
		wantErr error
		wantCmd string
	}{
		{name: "bad magic", bad: header(wire.Mainnet.Magic, "verack", 0), wantErr: wire.ErrBadMagic},
		{name: "bad magic, random bytes", bad: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), wantErr: wire.ErrBadMagic},
		{name: "control byte in command", bad: header(magic, "ver\x01ack", 0), wantErr: wire.ErrBadCommand},
		{name: "byte after NUL in command", bad: header(magic, "ping\x00x", 8), wantErr: wire.ErrBadCommand},
		{name: "empty command", bad: header(magic, "", 0), wantErr: wire.ErrBadCommand},
		// Only the 24 header bytes: the length is refused before the
		// payload arrives.
		{name: "oversize, header only", bad: header(magic, "block", wire.MaxPayload+1), wantErr: wire.ErrPayloadTooLarge, wantCmd: "block"},
		{name: "length 0xffffffff", bad: header(magic, "tx", 0xffffffff), wantErr: wire.ErrPayloadTooLarge, wantCmd: "tx"},
		// Per-command limits, from the header alone.
		{name: "verack with a payload", bad: header(magic, "verack", 1), wantErr: wire.ErrPayloadTooLarge, wantCmd: "verack"},
		{name: "3,999,999-byte ping", bad: header(magic, "ping", 3_999_999), wantErr: wire.ErrPayloadTooLarge, wantCmd: "ping"},
		{name: "addr over 1,000 entries", bad: header(magic, "addr", wire.MaxAddrPayload+1), wantErr: wire.ErrPayloadTooLarge, wantCmd: "addr"},
		{name: "version with a long user agent", bad: header(magic, "version", wire.MaxVersionPayload+1), wantErr: wire.ErrPayloadTooLarge, wantCmd: "version"},
	}
	for _, tt := range tests {
		stream := append(slices.Clone(good), tt.bad...)
		n := len(stream)
		layouts := map[string]layout{
			"coalesced":               sameSlab(n),
			"one byte per chunk":      sameSlab(ones(n)...),
			"one byte per slab":       slabEach(0, ones(n)...),
			"header split over slabs": slabEach(1, len(good)+10, n-len(good)-10),
			"header split in a slab":  sameSlab(len(good)+10, n-len(good)-10),
		}
		for lname, l := range layouts {
			t.Run(tt.name+"/"+lname, func(t *testing.T) {
				got := frameStream(t, stages.Options{Peer: "127.0.0.1:18444", Magic: magic}, stream, l)
				var se *stages.Error
				if !errors.As(got.err, &se) {
					t.Fatalf("Push error = %v (%T), want *stages.Error", got.err, got.err)
				}
				if se.Stage != stages.StageFramer || se.Peer != "127.0.0.1:18444" || se.Command != tt.wantCmd {
					t.Errorf("error stage, peer, command = %q, %q, %q; want %q, %q, %q",
						se.Stage, se.Peer, se.Command, stages.StageFramer, "127.0.0.1:18444", tt.wantCmd)
				}
				if !errors.Is(got.err, tt.wantErr) {
					t.Errorf("error %v does not wrap %v", got.err, tt.wantErr)
				}
				// The good frames before the bad header are handed on
				// (with the error when they complete in the same Push).
				if !bytes.Equal(got.bytes, good) {
					t.Errorf("frames out before the error:\n got %x\nwant %x", got.bytes, good)
				}
			})
		}
	}
}

// runFramer runs a framer's goroutine over chunks and returns its error and
// the commands it handed on.
// Both framers run; the test fails unless they agree.
func runFramer(t *testing.T, ctx context.Context, opts stages.Options, chunks ...[]byte) ([]string, error) {
	t.Helper()
	cmds, err := runFramerWith(t, ctx, stages.NewFramer(opts), chunks...)
	quiet := opts
	quiet.Observer = nil
	ccmds, cerr := runFramerWith(t, ctx, stages.NewCopyFramer(quiet), chunks...)
	if !slices.Equal(cmds, ccmds) || fmt.Sprint(err) != fmt.Sprint(cerr) {
		t.Errorf("copy framer: %v, %v; slab framer: %v, %v", ccmds, cerr, cmds, err)
	}
	return cmds, err
}

func runFramerWith(t *testing.T, ctx context.Context, f testFramer, chunks ...[]byte) ([]string, error) {
	t.Helper()
	in := make(chan stages.Chunk, len(chunks))
	var tracker slabTracker
	for _, c := range chunks {
		s := stages.NewSlab(len(c))
		tracker.add(s)
		copy(s.B, c)
		in <- stages.Chunk{Slab: s, Off: 0, End: len(c)}
	}
	close(in)
	out := make(chan *stages.Batch, 16)
	err := f.Run(ctx, in, out)
	close(out)
	var cmds []string
	for b := range out {
		tracker.add(b.Slabs()...)
		for i := range b.Frames {
			cmds = append(cmds, b.Frames[i].CommandName())
		}
		b.Release()
	}
	for c := range in {
		c.Slab.Release()
	}
	if len(chunks) > 0 {
		tracker.check(t)
	}
	return cmds, err
}

func TestFramerRunStreamEnd(t *testing.T) {
	stream := handshakeStream()
	verFrame := wire.HeaderSize + int(binary.LittleEndian.Uint32(stream[16:20]))
	tests := []struct {
		name     string
		chunks   [][]byte
		wantErr  error
		wantCmd  string
		wantCmds int
	}{
		{name: "whole stream", chunks: [][]byte{stream}, wantCmds: len(handshakeMessages())},
		{name: "ends inside a header", chunks: [][]byte{stream[:10]}, wantErr: stages.ErrStreamEnded},
		{name: "ends inside a payload", chunks: [][]byte{stream[:30]}, wantErr: stages.ErrStreamEnded, wantCmd: "version"},
		// version, then sendaddrv2, wtxidrelay, verack and sendheaders
		// (24 bytes each) and 3 bytes of sendcmpct's payload.
		{name: "ends inside a later frame", chunks: [][]byte{stream[:verFrame], stream[verFrame : verFrame+4*24+24+3]},
			wantErr: stages.ErrStreamEnded, wantCmd: "sendcmpct", wantCmds: 5},
		{name: "empty", chunks: nil},
		// The frames before a bad header are handed on, then the error.
		{name: "bad magic after frames", chunks: [][]byte{append(encode(&wire.Verack{}, &wire.GetAddr{}), header(wire.Testnet3.Magic, "ping", 8)...)},
			wantErr: wire.ErrBadMagic, wantCmds: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmds, err := runFramer(t, t.Context(), stages.Options{Peer: "p", Magic: magic}, tt.chunks...)
			if len(cmds) != tt.wantCmds {
				t.Errorf("framed %d frames (%v), want %d", len(cmds), cmds, tt.wantCmds)
			}
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Run = %v, want nil", err)
				}
				return
			}
			var se *stages.Error
			if !errors.As(err, &se) || se.Stage != stages.StageFramer || se.Command != tt.wantCmd {
				t.Fatalf("Run = %#v, want *stages.Error from the framer naming %q", err, tt.wantCmd)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Run = %v, want it to wrap %v", err, tt.wantErr)
			}
		})
	}
}

func TestFramerRunStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	in := make(chan stages.Chunk) // never closed
	out := make(chan *stages.Batch)
	errc := make(chan error, 1)
	go func() { errc <- stages.NewFramer(stages.Options{Magic: magic}).Run(ctx, in, out) }()
	s := stages.NewSlab(100)
	n := copy(s.B, encode(&wire.Verack{}, &wire.Verack{})[:30]) // a frame and a bit
	in <- stages.Chunk{Slab: s, End: n}
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v, want context.Canceled", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return 2s after ctx was cancelled")
	}
	// The batch it could not send and the pending bytes were released.
	if got := s.Refs(); got != 0 {
		t.Errorf("slab has %d references after Run, want 0", got)
	}
}

// TestFramerSkipsUnwanted: frames of commands the session does not want
// are reported and skipped as their bytes arrive, in every layout, by both
// framers; the wanted ones around them arrive intact, and a skipped frame's
// size never reaches the read hint (so the reader never sizes a slab for
// a block nobody reads).
func TestFramerSkipsUnwanted(t *testing.T) {
	want, err := stages.NewWants(wire.CmdPing, wire.CmdVerack)
	if err != nil {
		t.Fatal(err)
	}
	block := &wire.Raw{Cmd: wire.CmdBlock, Payload: bytes.Repeat([]byte{7}, 300<<10)}
	stream := encode(&wire.Verack{}, block, &wire.Ping{Nonce: 1, HasNonce: true},
		&wire.Raw{Cmd: wire.CmdTx, Payload: make([]byte, 5000)}, &wire.Raw{Cmd: "xyzzy", Payload: []byte{1, 2, 3}},
		&wire.Ping{Nonce: 2, HasNonce: true}, block)
	n := len(stream)
	r := rand.New(rand.NewPCG(1, 2))
	layouts := map[string]layout{
		"coalesced":          sameSlab(n),
		"4 KiB reads":        sameSlab(splitEvery(n, 4096)...),
		"one slab per 1000":  slabEach(0, splitEvery(n, 1000)...),
		"random":             randomLayout(r, n, 70_000),
		"header split":       slabEach(3, 24+10, n-34),
		"block header split": slabEach(0, 24+10, n-34),
	}
	for name, l := range layouts {
		t.Run(name, func(t *testing.T) {
			obs := new(recorder)
			hint := new(stages.ReadHint)
			got := frameStream(t, stages.Options{Magic: magic, Want: want, Observer: obs, Hint: hint}, stream, l)
			if got.err != nil {
				t.Fatal(got.err)
			}
			if wantCmds := []string{"verack", "ping", "ping"}; !slices.Equal(got.commands, wantCmds) {
				t.Errorf("framed %v, want %v", got.commands, wantCmds)
			}
			if wantSkipped := []string{"block", "tx", "xyzzy", "block"}; !slices.Equal(obs.skipped, wantSkipped) {
				t.Errorf("skipped %v, want %v", obs.skipped, wantSkipped)
			}
			if h := hint.Get(); h > 64 {
				t.Errorf("read hint %d after skipping large frames, want it untouched by them", h)
			}
		})
	}
}

// A stream that ends inside a skipped frame is cut short, as one that ends
// inside any frame.
func TestFramerSkipStreamEnd(t *testing.T) {
	want, _ := stages.NewWants(wire.CmdPing)
	stream := encode(&wire.Ping{Nonce: 1, HasNonce: true}, &wire.Raw{Cmd: wire.CmdBlock, Payload: make([]byte, 1000)})
	cmds, err := runFramer(t, t.Context(), stages.Options{Peer: "p", Magic: magic, Want: want}, stream[:len(stream)-10])
	if !errors.Is(err, stages.ErrStreamEnded) || !slices.Equal(cmds, []string{"ping"}) {
		t.Errorf("Run = %v, %v; want the ping, then ErrStreamEnded", cmds, err)
	}
}

func TestWants(t *testing.T) {
	w, err := stages.NewWants(wire.CmdAddr, wire.CmdPing)
	if err != nil {
		t.Fatal(err)
	}
	raw := func(s string) *[wire.CommandSize]byte {
		var b [wire.CommandSize]byte
		copy(b[:], s)
		return &b
	}
	for cmd, want := range map[string]bool{"addr": true, "ping": true, "pong": false, "block": false, "xyzzy": false, "": false} {
		if got := w.Has(raw(cmd)); got != want {
			t.Errorf("Has(%q) = %v, want %v", cmd, got, want)
		}
	}
	if got := w.Commands(); !slices.Equal(got, []string{"ping", "addr"}) {
		t.Errorf("Commands() = %v", got)
	}
	if _, err := stages.NewWants("nonsense"); err == nil {
		t.Error("NewWants of an unknown command succeeded")
	}
	var all *stages.Wants
	if !all.Has(raw("xyzzy")) {
		t.Error("a nil *Wants does not want everything")
	}
}
