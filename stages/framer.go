package stages

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/btcpipe/btcpipe/wire"
)

// ErrStreamEnded: the input ended in the middle of a frame.
var ErrStreamEnded = errors.New("stream ended mid-frame")

// Framer cuts frames from the chunks the reader sends, keeping the bytes of
// an incomplete frame until the rest arrives — the rolling buffer of the
// write-up, without the copying: frames are cut in place in the reader's
// slabs (see the package documentation), several per chunk or one over many
// chunks, and handed on as one Batch per chunk.
//
// A bad magic, a bad command or a declared length over wire.MaxPayload ends
// the stage with an error, as soon as the 24 header bytes are there, as
// Bitcoin Core disconnects on them. Checksums are left to the verifier.
type Framer struct {
	Opts Options
	// pending is the unconsumed tail: bytes of an incomplete frame, in
	// pending.slab.B[off:end]; pending holds one reference to the slab.
	pending tail
	// skip is how many more bytes of an unwanted frame (Opts.Want) are to
	// be discarded as they arrive.
	skip int
}

// NewFramer returns a framer.
func NewFramer(opts Options) *Framer { return &Framer{Opts: opts.Defaults()} }

// Run frames chunks from in until in is closed or ctx ends.
func (f *Framer) Run(ctx context.Context, in <-chan Chunk, out chan<- *Batch) error {
	return runFramer(ctx, in, out, f, f.Opts)
}

// pusher is what runFramer drives: a framer of either kind.
type pusher interface {
	Push(Chunk) (*Batch, error)
	Pending() int
	pendingCommand() string
	skipping() int
	Reset()
}

// runFramer is the stage loop of both framers: it pushes every chunk from in
// and hands on the batches, and at the end of the input reports a frame
// left incomplete.
func runFramer(ctx context.Context, in <-chan Chunk, out chan<- *Batch, f pusher, opts Options) error {
	defer f.Reset()
	for {
		select {
		case c, ok := <-in:
			if !ok {
				if n := f.Pending(); n > 0 {
					return opts.errorf(StageFramer, f.pendingCommand(), fmt.Errorf("%w (%d bytes pending)", ErrStreamEnded, n))
				}
				if n := f.skipping(); n > 0 {
					return opts.errorf(StageFramer, "", fmt.Errorf("%w (%d bytes of a skipped frame to come)", ErrStreamEnded, n))
				}
				return nil
			}
			b, err := f.Push(c)
			if b != nil { // with an error: the frames before the damage
				if serr := send(ctx, out, b); serr != nil {
					b.Release()
					return serr
				}
			}
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Pending returns the number of bytes held for an incomplete frame.
func (f *Framer) Pending() int { return f.pending.len() }

func (f *Framer) pendingBytes() []byte { return f.pending.bytes() }

func (f *Framer) pendingCommand() string { return headerCommand(f.pendingBytes()) }

// headerCommand returns the command of the header that starts p, if p holds
// a whole valid one.
func headerCommand(p []byte) string {
	if len(p) >= wire.HeaderSize {
		if h, err := wire.ParseHeader(p); err == nil {
			return h.CommandName()
		}
	}
	return ""
}

// Reset drops the pending bytes.
func (f *Framer) Reset() { f.pending.reset() }

// Push takes over c (and its slab reference) and returns the frames it
// completes, or nil if it completes none. The caller owns the batch. With an
// error it returns the frames completed before the damage (or nil), so that
// they can still be handled.
func (f *Framer) Push(c Chunk) (*Batch, error) {
	var b *Batch
	if c = f.discard(c); c.Slab == nil {
		return nil, nil
	}
	for !f.pending.extend(c) {
		// c does not continue the pending bytes in memory: finish the
		// pending frame in an assembly slab, then go on with the rest of c.
		var err error
		if c, b, err = f.assemble(c, b); err != nil {
			if c.Slab != nil {
				c.Slab.Release()
			}
			return b, err
		}
		if c.Slab == nil {
			return b, nil
		}
	}
	return f.scan(b)
}

// discard drops from the start of c the bytes of a frame being skipped,
// and returns what is left of it (Slab nil when nothing is: c is released).
func (f *Framer) discard(c Chunk) Chunk {
	if f.skip == 0 {
		return c
	}
	k := min(f.skip, c.End-c.Off)
	f.skip -= k
	c.Off += k
	if c.Off == c.End {
		c.Slab.Release()
		return Chunk{}
	}
	return c
}

// skipping returns how many bytes of a skipped frame are still to come.
func (f *Framer) skipping() int { return f.skip }

// unwanted reports whether the frame whose (valid) header starts buf is one
// to skip, and if so reports it and returns its size.
func unwanted(buf []byte, o *Options) (int, bool) {
	if o.Want == nil || o.Want.Has((*[wire.CommandSize]byte)(buf[4:16])) {
		return 0, false
	}
	h, _ := wire.ParseHeader(buf) // checked already
	o.Observer.Skipped(&h)
	return frameSize(buf), true
}

// scan cuts every complete frame from the pending bytes into b.
func (f *Framer) scan(b *Batch) (*Batch, error) {
	slab := f.pending.slab
	buf := slab.B[f.pending.off:f.pending.end]
	// Each frame is scanned straight into a new slot of the batch, which
	// is given back when no frame is there: returning frames by value and
	// appending them cost more than the scan (store-forwarding stalls).
	fresh := b == nil
	if fresh {
		b = NewBatch()
	}
	added := 0
	for {
		fr := b.grow()
		n, err := wire.ScanFrameInto(fr, buf, f.Opts.Magic)
		if n == 0 && err == nil && len(buf) >= wire.HeaderSize {
			// An incomplete frame: if nobody wants it, skip it as it
			// arrives rather than hold (and wait for) its payload.
			if size, skip := unwanted(buf, &f.Opts); skip {
				f.skip = size - len(buf)
				buf = buf[len(buf):]
			}
		}
		if n > 0 && f.Opts.Want != nil && !f.Opts.Want.Has(&fr.Command) {
			f.Opts.Observer.Skipped(&fr.Header)
			b.Frames = b.Frames[:len(b.Frames)-1]
			buf = buf[n:]
			continue
		}
		if n == 0 {
			b.Frames = b.Frames[:len(b.Frames)-1]
			if added > 0 {
				b.hold(slab) // once for every frame cut from it here
			}
			if fresh && len(b.Frames) == 0 {
				b.Release()
				b = nil
			}
			if err != nil {
				return b, f.Opts.errorf(StageFramer, commandOf(err), err)
			}
			break
		}
		added++
		f.Opts.Observer.FrameIn(fr)
		buf = buf[n:]
	}
	f.pending.off = f.pending.end - len(buf)
	switch {
	case len(buf) == 0:
		f.Reset()
	case len(buf) >= wire.HeaderSize:
		f.Opts.Hint.Set(frameSize(buf))
	}
	return b, nil
}

// assemble completes the pending frame in a slab of its own, copying the
// pending bytes and as much of c as the frame needs. It returns what is left
// of c (Slab nil when nothing is), and b with the frame if it completed.
func (f *Framer) assemble(c Chunk, b *Batch) (Chunk, *Batch, error) {
	pending := f.pendingBytes()
	size := 0
	if len(pending) >= wire.HeaderSize {
		size = frameSize(pending) // the header was checked when it arrived
	} else {
		var hdr [wire.HeaderSize]byte
		k := copy(hdr[copy(hdr[:], pending):], c.Bytes())
		if len(pending)+k < wire.HeaderSize {
			f.pending.keep(c, f.Opts.Budget) // still no whole header
			return Chunk{}, b, nil
		}
		if _, _, err := wire.ScanFrame(hdr[:], f.Opts.Magic); err != nil {
			return c, b, f.Opts.errorf(StageFramer, commandOf(err), err)
		}
		size = frameSize(hdr[:])
		if _, skip := unwanted(hdr[:], &f.Opts); skip {
			f.skip = size - len(pending)
			f.Reset()
			return f.discard(c), b, nil
		}
		f.Opts.Hint.Set(size)
	}
	c, whole := f.pending.fill(c, size, f.Opts.Budget)
	if whole {
		var err error
		if b, err = f.scan(b); err != nil { // cuts exactly this frame
			return c, b, err
		}
	}
	return c, b, nil
}

// frameSize returns the size of the frame whose header starts b.
func frameSize(b []byte) int {
	return wire.HeaderSize + int(binary.LittleEndian.Uint32(b[16:20]))
}

func commandOf(err error) string {
	var de *wire.DecodeError
	if errors.As(err, &de) {
		return de.Command
	}
	return ""
}
