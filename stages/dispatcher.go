package stages

import (
	"context"

	"github.com/btcpipe/btcpipe/wire"
)

// Dispatcher decodes each verified frame with a reused wire.Decoder and hands
// the message to the Handler, in arrival order. It is the batches' last
// reader: it releases each batch once all its frames are handled.
//
// A payload that does not decode is reported to the Observer and dropped, as
// Bitcoin Core drops it; for the commands Options.FatalDecode names it ends
// the connection. Commands the wire package does not decode arrive at the
// handler as *wire.Raw.
type Dispatcher struct {
	Opts    Options
	Handler Handler
	dec     wire.Decoder
}

// NewDispatcher returns a dispatcher driving h.
func NewDispatcher(h Handler, opts Options) *Dispatcher {
	return &Dispatcher{Opts: opts.Defaults(), Handler: h}
}

// Run dispatches batches from in until it is closed or ctx ends. Replies the
// handler sends go to out.
func (d *Dispatcher) Run(ctx context.Context, in <-chan *Batch, out chan<- wire.Message) error {
	sender := func(ctx context.Context, m wire.Message) error { return send(ctx, out, m) }
	for {
		select {
		case b, ok := <-in:
			if !ok {
				return nil
			}
			err := d.Dispatch(ctx, b, sender)
			b.Release()
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Dispatch decodes and handles every frame of b. It does not release b.
func (d *Dispatcher) Dispatch(ctx context.Context, b *Batch, sender Sender) error {
	for i := range b.Frames {
		f := &b.Frames[i]
		cmd := f.CommandName()
		m, err := d.dec.Decode(cmd, f.Payload)
		if err != nil {
			d.Opts.Observer.DecodeFailed(f, err)
			if d.Opts.FatalDecode(cmd, err) {
				return d.Opts.errorf(StageDispatcher, cmd, err)
			}
			continue
		}
		d.Opts.Observer.Decoded(m)
		if err := d.Handler.Handle(ctx, m, sender); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return d.Opts.errorf(StageDispatcher, cmd, err)
		}
	}
	return nil
}
