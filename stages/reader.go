package stages

import (
	"context"
	"errors"
	"io"
)

// minRead is the least free space the reader wants in its slab before a
// read; with less it moves to a new slab.
const minRead = 4 << 10

// Reader reads a byte stream into slabs and sends each read on as a Chunk.
// It owns the slab it is reading into; every chunk it sends carries a
// reference the receiver must release.
//
// A read error (io.EOF when the peer closed) ends the stage, wrapped in
// *Error naming the peer. The reader cannot be interrupted inside Read: the
// pipeline closes the connection when ctx ends.
type Reader struct {
	R    io.Reader
	Opts Options
	// Tee, if set, gets a copy of every byte read (BTCPIPE_RECORD).
	Tee io.Writer
	// EndAtEOF makes io.EOF a normal end (nil) rather than an error, for
	// recorded streams: the framer then reports a frame cut short.
	EndAtEOF bool
}

// NewReader returns a reader of r.
func NewReader(r io.Reader, opts Options) *Reader {
	return &Reader{R: r, Opts: opts.Defaults()}
}

// Run reads until an error; in is unused (the reader is a source).
func (r *Reader) Run(ctx context.Context, _ <-chan struct{}, out chan<- Chunk) error {
	var slab *Slab
	w := 0
	defer func() {
		if slab != nil {
			slab.Release()
		}
	}()
	for {
		if slab == nil || len(slab.B)-w < minRead {
			if slab != nil {
				slab.Release()
				slab = nil
			}
			// Room for the next slab: as large as the largest frame seen
			// needs, within what the budget can ever grant; waiting for it
			// is how a connection over its budget stops reading.
			size := max(r.Opts.ReadSize, min(8*r.Opts.Hint.Get(), MaxSlab))
			size = SlabSize(size)
			for b := r.Opts.Budget; size > MinSlab && int64(size) > b.Fit(int64(size)); {
				size /= 2
			}
			if err := r.Opts.Budget.Acquire(ctx, int64(size), r.Opts.BudgetWait); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return r.Opts.errorf(StageReader, "", err)
			}
			slab, w = NewSlabIn(size, r.Opts.Budget), 0
		}
		n, err := r.R.Read(slab.B[w:])
		if n > 0 {
			if r.Tee != nil {
				if _, terr := r.Tee.Write(slab.B[w : w+n]); terr != nil {
					return r.Opts.errorf(StageReader, "", terr)
				}
			}
			slab.Retain()
			if serr := send(ctx, out, Chunk{Slab: slab, Off: w, End: w + n}); serr != nil {
				slab.Release()
				return serr
			}
			w += n
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if r.EndAtEOF && errors.Is(err, io.EOF) {
				return nil
			}
			return r.Opts.errorf(StageReader, "", err)
		}
	}
}
