package pipeline_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/btcpipe/btcpipe/pipeline"
	"github.com/btcpipe/btcpipe/stages"
	"github.com/btcpipe/btcpipe/wire"
)

// trickleReader reads at most 5 bytes at a time, each read into a slab of
// its own: the worst chunking a framer can be handed.
type trickleReader struct {
	r   io.Reader
	eof bool // a recorded stream: its end is not an error
}

func (t trickleReader) Run(ctx context.Context, _ <-chan struct{}, out chan<- stages.Chunk) error {
	for {
		s := stages.NewSlab(5)
		n, err := t.r.Read(s.B[:5])
		if n == 0 {
			s.Release()
		} else {
			select {
			case out <- stages.Chunk{Slab: s, End: n}: // the chunk carries our reference
			case <-ctx.Done():
				s.Release()
				return ctx.Err()
			}
		}
		if err == io.EOF && t.eof {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// countingFramer is the slab framer, counting the batches it hands on.
type countingFramer struct {
	inner   pipeline.Framer
	batches *int
}

func (f countingFramer) Run(ctx context.Context, in <-chan stages.Chunk, out chan<- *stages.Batch) error {
	mid := make(chan *stages.Batch)
	errc := make(chan error, 1)
	go func() { defer close(mid); errc <- f.inner.Run(ctx, in, mid) }()
	for b := range mid {
		*f.batches++
		select {
		case out <- b:
		case <-ctx.Done():
			b.Release()
		}
	}
	return <-errc
}

// strictVerifier ends the connection at the first bad checksum instead of
// dropping the frame, as BIP324 ends it at a bad tag.
type strictVerifier struct{ peer string }

func (v strictVerifier) Run(ctx context.Context, in <-chan *stages.Batch, out chan<- *stages.Batch) error {
	for b := range in {
		for i := range b.Frames {
			if err := b.Frames[i].Check(); err != nil {
				cmd := b.Frames[i].CommandName()
				b.Release()
				return &stages.Error{Peer: v.peer, Stage: stages.StageVerifier, Command: cmd, Err: err}
			}
		}
		select {
		case out <- b:
		case <-ctx.Done():
			b.Release()
			return ctx.Err()
		}
	}
	return nil
}

// pongDispatcher decodes nothing but pings, which it answers; it is the
// batches' last reader, so it releases them.
type pongDispatcher struct{ seen *[]string }

func (d pongDispatcher) Run(ctx context.Context, in <-chan *stages.Batch, out chan<- wire.Message) error {
	var dec wire.Decoder
	for b := range in {
		for i := range b.Frames {
			f := &b.Frames[i]
			*d.seen = append(*d.seen, f.CommandName())
			if f.CommandName() != wire.CmdPing {
				continue
			}
			m, err := dec.Decode(wire.CmdPing, f.Payload)
			if err != nil {
				continue
			}
			select {
			case out <- &wire.Pong{Nonce: m.(*wire.Ping).Nonce}:
			case <-ctx.Done():
				b.Release()
				return ctx.Err()
			}
		}
		b.Release()
	}
	return nil
}

// lineWriter writes a line per message instead of frames.
type lineWriter struct{ w io.Writer }

func (l lineWriter) Run(ctx context.Context, in <-chan wire.Message, _ chan<- struct{}) error {
	for m := range in {
		fmt.Fprintf(l.w, "  sent %s %d\n", m.Command(), m.(*wire.Pong).Nonce)
	}
	return nil
}

// idle is a handler whose Start sends nothing: the dispatcher does it all.
type idle struct{}

func (idle) Start(ctx context.Context, _ stages.Sender) error { <-ctx.Done(); return ctx.Err() }
func (idle) Handle(context.Context, wire.Message, stages.Sender) error {
	return nil
}

// Each of the five stages can be replaced: register an implementation by
// name (here in a clone of the default stages, so nothing global changes)
// and name it in the Config, as BTCPIPE_READER, BTCPIPE_FRAMER, … do from
// the environment. A custom verifier declares no wire format, so it fits
// the v1 transport.
func ExampleStages_custom() {
	magic := wire.Regtest.Magic
	var stream []byte
	for _, m := range []wire.Message{&wire.Verack{}, &wire.Ping{Nonce: 1, HasNonce: true}, &wire.Ping{Nonce: 2, HasNonce: true}} {
		stream = wire.AppendMessage(stream, magic, m)
	}
	bad := wire.AppendMessage(nil, magic, &wire.Ping{Nonce: 3, HasNonce: true})
	bad[20] ^= 0xff // damage the checksum
	stream = append(stream, bad...)

	var batches int
	var seen []string
	var sent strings.Builder
	s := pipeline.DefaultStages.Clone()
	s.Readers.MustRegister("trickle", pipeline.Impl[pipeline.Reader]{
		Doc: "5-byte reads",
		New: func(e pipeline.Env) (pipeline.Reader, error) { return trickleReader{e.R, e.EndAtEOF}, nil },
	})
	s.Framers.MustRegister("counting", pipeline.Impl[pipeline.Framer]{
		Wire: pipeline.WireV1, Doc: "the slab framer, counted",
		New: func(e pipeline.Env) (pipeline.Framer, error) {
			return countingFramer{stages.NewFramer(e.Options), &batches}, nil
		},
	})
	s.Verifiers.MustRegister("strict", pipeline.Impl[pipeline.Verifier]{
		Doc: "a bad checksum ends the connection",
		New: func(e pipeline.Env) (pipeline.Verifier, error) { return strictVerifier{e.Options.Peer}, nil },
	})
	s.Dispatchers.MustRegister("pong", pipeline.Impl[pipeline.Dispatcher]{
		Doc: "answers pings itself",
		New: func(pipeline.Env) (pipeline.Dispatcher, error) { return pongDispatcher{&seen}, nil },
	})
	s.Writers.MustRegister("lines", pipeline.Impl[pipeline.Writer]{
		Doc: "a line per message",
		New: func(e pipeline.Env) (pipeline.Writer, error) { return lineWriter{e.W}, nil },
	})

	p, err := pipeline.New(bytes.NewReader(stream), &sent, nil, idle{}, pipeline.Config{
		Options: stages.Options{Peer: "example:1", Magic: magic},
		Stages:  s,
		Reader:  "trickle", Framer: "counting", Verifier: "strict", Dispatcher: "pong", Writer: "lines",
		EndAtEOF: true,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	err = p.Run(context.Background())
	fmt.Printf("dispatched %v from %d batches\n%s", seen, batches, sent.String())
	fmt.Println("ended:", err)
	// Output:
	// dispatched [verack ping ping] from 4 batches
	//   sent pong 1
	//   sent pong 2
	// ended: peer example:1: verifier: ping: wire: ping at offset 20: bad checksum
}
