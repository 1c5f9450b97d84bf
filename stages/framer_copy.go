package stages

import (
	"context"

	"github.com/btcpipe/btcpipe/wire"
)

// CopyFramer is the plain rolling-buffer framer of the write-up, kept as the
// baseline that shows what the slab Framer's zero-copy buys: it copies each
// chunk's bytes onto the end of a buffer of its own (releasing the chunk at
// once), cuts the frames complete in it, copies those frames into a fresh
// slab for the batch, and moves the incomplete tail to the buffer's start.
// Every byte is copied twice (three times when a tail is moved); once warm it
// allocates nothing per frame.
//
// Its errors are the Framer's: a bad magic, a bad command or a declared
// length over wire.MaxPayload end the stage as soon as the header is there.
type CopyFramer struct {
	Opts Options
	buf  []byte // bytes of an incomplete frame; owned by the framer
	skip int    // bytes of an unwanted frame still to discard
}

// NewCopyFramer returns a copying framer.
func NewCopyFramer(opts Options) *CopyFramer { return &CopyFramer{Opts: opts.Defaults()} }

// Run frames chunks from in until in is closed or ctx ends.
func (f *CopyFramer) Run(ctx context.Context, in <-chan Chunk, out chan<- *Batch) error {
	return runFramer(ctx, in, out, f, f.Opts)
}

// Pending returns the number of bytes held for an incomplete frame.
func (f *CopyFramer) Pending() int { return len(f.buf) }

func (f *CopyFramer) pendingCommand() string { return headerCommand(f.buf) }

func (f *CopyFramer) pendingBytes() []byte { return f.buf }

func (f *CopyFramer) skipping() int { return f.skip }

// Reset drops the pending bytes.
func (f *CopyFramer) Reset() { f.buf = f.buf[:0] }

// Push copies c's bytes, releases c and returns the frames it completes, or
// nil. With an error it returns the frames completed before the damage.
func (f *CopyFramer) Push(c Chunk) (*Batch, error) {
	in := c.Bytes()
	k := min(f.skip, len(in))
	f.skip -= k
	f.buf = append(f.buf, in[k:]...)
	c.Slab.Release()
	b := NewBatch()
	used := 0
	var err error
	for {
		fr := b.grow()
		rest := f.buf[used:]
		n, serr := wire.ScanFrameInto(fr, rest, f.Opts.Magic)
		if n == 0 && serr == nil && len(rest) >= wire.HeaderSize {
			if size, skip := unwanted(rest, &f.Opts); skip {
				f.skip = size - len(rest)
				f.buf = f.buf[:used] // the skipped frame's bytes go
			}
		}
		if n > 0 && f.Opts.Want != nil && !f.Opts.Want.Has(&fr.Command) {
			// A whole unwanted frame: cut it out of the buffer.
			f.Opts.Observer.Skipped(&fr.Header)
			b.Frames = b.Frames[:len(b.Frames)-1]
			f.buf = append(f.buf[:used], f.buf[used+n:]...)
			continue
		}
		if n == 0 {
			b.Frames = b.Frames[:len(b.Frames)-1]
			if serr != nil {
				err = f.Opts.errorf(StageFramer, commandOf(serr), serr)
			}
			break
		}
		used += n
	}
	if used > 0 {
		// The frames alias f.buf: copy them into a slab of the batch's own
		// and point their payloads there.
		s := chargedSlab(used, f.Opts.Budget)
		copy(s.B, f.buf[:used])
		off := 0
		for i := range b.Frames {
			fr := &b.Frames[i]
			n := len(fr.Payload)
			fr.Payload = s.B[off+wire.HeaderSize : off+wire.HeaderSize+n : off+wire.HeaderSize+n]
			off += wire.HeaderSize + n
			f.Opts.Observer.FrameIn(fr)
		}
		b.hold(s)
		s.Release() // the batch holds it now
		f.buf = f.buf[:copy(f.buf, f.buf[used:])]
	}
	if len(b.Frames) == 0 {
		b.Release()
		b = nil
	}
	return b, err
}
