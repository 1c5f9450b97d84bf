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
	return runWriter(ctx, in, w.W, w.Opts, w.gather, &w.buf, w.encode)
}

// runWriter is the loop of every writer: it takes a message, encodes it
// (encode appends it to dst, in v1 frames or v2 packets) into *buf, gathers
// the messages queued behind it while the buffer holds less than gather
// bytes (0: none), and writes the buffer with a deadline when out supports
// one. *buf is the writer's own and reused.
func runWriter(ctx context.Context, in <-chan wire.Message, out io.Writer, opts Options, gather int, buf *[]byte,
	encode func(dst []byte, m wire.Message) ([]byte, error)) error {
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
		var err error
		last := m.Command()
		if *buf, err = encode((*buf)[:0], m); err != nil {
			return opts.errorf(StageWriter, last, err)
		}
	more:
		for len(*buf) < gather {
			select {
			case mm, ok := <-in:
				if !ok {
					break more
				}
				last = mm.Command()
				if *buf, err = encode(*buf, mm); err != nil {
					return opts.errorf(StageWriter, last, err)
				}
			default:
				break more
			}
		}
		if d, ok := out.(deadliner); ok {
			_ = d.SetWriteDeadline(time.Now().Add(opts.WriteTimeout))
		}
		if _, err := out.Write(*buf); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return opts.errorf(StageWriter, last, err)
		}
	}
}

// encode appends m to dst as a frame, refusing (with an error naming the
// limit) what the wire would reject: a command over 12 bytes, a list or a
// string over its limit, a payload over the command's MaxPayloadFor.
func (w *Writer) encode(dst []byte, m wire.Message) ([]byte, error) {
	start := len(dst)
	dst, err := wire.EncodeMessage(dst, w.Opts.Magic, m)
	if err != nil {
		return dst[:start], err
	}
	w.Opts.Observer.FrameOut(m.Command(), dst[start:])
	return dst, nil
}
