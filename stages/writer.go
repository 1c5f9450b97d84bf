package stages

import (
	"context"
	"io"
	"time"

	"github.com/btcpipe/btcpipe/wire"
)

// maxCoalesce is how many bytes of queued messages the writer gathers into
// one write.
const maxCoalesce = 64 << 10

// Writer encodes outgoing messages into a buffer it owns and reuses, and
// writes them with a deadline (when W supports SetWriteDeadline). Messages
// queued together are coalesced into one write (gathering stops once it
// holds 64 KiB).
//
// A peer that does not read makes the write time out, which ends the stage;
// until then the bounded queue in front of the writer fills and senders
// block, so nothing buffers without bound.
type Writer struct {
	W    io.Writer
	Opts Options
	buf  []byte
	// gather is how many bytes of queued messages one write may hold
	// before the writer stops gathering: maxCoalesce, or 0 to write each
	// message on its own.
	gather int
}

// NewWriter returns a coalescing writer to w.
func NewWriter(w io.Writer, opts Options) *Writer {
	return &Writer{W: w, Opts: opts.Defaults(), gather: maxCoalesce}
}

// NewDirectWriter returns a writer to w that writes each message as it
// comes, in a write of its own: no message waits while others are gathered,
// at the cost of a system call per message.
func NewDirectWriter(w io.Writer, opts Options) *Writer {
	return &Writer{W: w, Opts: opts.Defaults()}
}

type deadliner interface{ SetWriteDeadline(time.Time) error }

// Run writes messages from in until it is closed or ctx ends. out is unused
// (the writer is a sink).
func (w *Writer) Run(ctx context.Context, in <-chan wire.Message, _ chan<- struct{}) error {
	for {
		var m wire.Message
		select {
		case mm, ok := <-in:
			if !ok {
				return nil
			}
			m = mm
		case <-ctx.Done():
			return ctx.Err()
		}
		w.buf = w.encode(w.buf[:0], m)
		last := m.Command()
	gather:
		for len(w.buf) < w.gather {
			select {
			case mm, ok := <-in:
				if !ok {
					break gather
				}
				w.buf = w.encode(w.buf, mm)
				last = mm.Command()
			default:
				break gather
			}
		}
		if d, ok := w.W.(deadliner); ok {
			_ = d.SetWriteDeadline(time.Now().Add(w.Opts.WriteTimeout))
		}
		if _, err := w.W.Write(w.buf); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return w.Opts.errorf(StageWriter, last, err)
		}
	}
}

func (w *Writer) encode(dst []byte, m wire.Message) []byte {
	start := len(dst)
	dst = wire.AppendMessage(dst, w.Opts.Magic, m)
	w.Opts.Observer.FrameOut(m.Command(), dst[start:])
	return dst
}
