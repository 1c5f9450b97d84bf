// Package pipeline assembles the stages of one connection — reader, framer,
// checksum verifier, dispatcher and writer — joined by bounded channels and
// run under an errgroup: when one stage fails or ctx ends, the context of all
// of them is cancelled, the connection is closed (which unblocks the reader)
// and Run returns once every goroutine has.
//
//	conn ──reader──▶ chunks ──framer──▶ batches ──verifier──▶ batches ──dispatcher──▶ outbound ──writer──▶ conn
//	                                                                       │  ▲
//	                                                                  Handler.Handle / Handler.Start
//
// Stages are chosen by name from a Registry, so an experiment can swap one
// with an environment variable (BTCPIPE_VERIFIER=parallel).
package pipeline

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/btcpipe/btcpipe/stages"
	"github.com/btcpipe/btcpipe/wire"
)

// StageSession names the handler's Start (handshake and ping timers) in
// errors, beside the stage names of package stages.
const StageSession = "session"

// Stage is the contract every stage meets. Run reads in until it is closed
// or ctx ends and sends to out; the runner closes out when Run returns. A
// source ignores in (it is nil) and a sink ignores out.
type Stage[In, Out any] interface {
	Run(ctx context.Context, in <-chan In, out chan<- Out) error
}

// Config describes one connection's pipeline.
type Config struct {
	// Stages options shared by every stage (peer name, magic, observer…).
	Options stages.Options
	// QueueDepth is the capacity of each channel between stages (default
	// 16). It tunes throughput, never correctness.
	QueueDepth int
	// Framer and Verifier name the implementations to use (see Registry);
	// empty means the default.
	Framer, Verifier string
	// Registry to look names up in; nil means DefaultRegistry.
	Registry *Registry
	// Record, if set, receives a copy of every byte read.
	Record io.Writer
	// EndAtEOF ends the pipeline normally when the input ends (a recorded
	// stream) instead of treating EOF as a dropped connection.
	EndAtEOF bool
}

// Queues exposes the channels of a running pipeline, so that metrics can
// report how full each one is (where back-pressure builds).
type Queues struct {
	Chunks   func() int
	Framed   func() int
	Verified func() int
	Outbound func() int
	Capacity int
}

// Pipeline is one connection's assembled stages.
type Pipeline struct {
	cfg      Config
	reader   Stage[struct{}, stages.Chunk]
	framer   Stage[stages.Chunk, *stages.Batch]
	verifier Stage[*stages.Batch, *stages.Batch]
	handler  stages.Handler
	r        io.Reader
	w        io.Writer
	closer   io.Closer

	mu     sync.Mutex
	queues *Queues
}

// New assembles a pipeline reading r and writing w; closer (which may be
// nil) is closed when the pipeline ends, to unblock a reader stuck in Read.
func New(r io.Reader, w io.Writer, closer io.Closer, h stages.Handler, cfg Config) (*Pipeline, error) {
	if cfg.QueueDepth <= 0 {
		cfg.QueueDepth = 16
	}
	if cfg.Options.Hint == nil {
		cfg.Options.Hint = new(stages.ReadHint)
	}
	cfg.Options = cfg.Options.Defaults()
	reg := cfg.Registry
	if reg == nil {
		reg = DefaultRegistry
	}
	framer, err := reg.Framer(cfg.Framer, cfg.Options)
	if err != nil {
		return nil, err
	}
	verifier, err := reg.Verifier(cfg.Verifier, cfg.Options)
	if err != nil {
		return nil, err
	}
	rd := stages.NewReader(r, cfg.Options)
	rd.Tee = cfg.Record
	rd.EndAtEOF = cfg.EndAtEOF
	return &Pipeline{cfg: cfg, reader: rd, framer: framer, verifier: verifier, handler: h, r: r, w: w, closer: closer}, nil
}

// Queues returns accessors for the depth of each channel while Run runs,
// or nil before.
func (p *Pipeline) Queues() *Queues {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.queues
}

// Run runs the pipeline until a stage fails or ctx ends, and returns the
// first error (a *stages.Error for a stage's failure, ctx.Err() when ctx
// ended first). Every goroutine it started has returned when it returns.
func (p *Pipeline) Run(ctx context.Context) error {
	depth := p.cfg.QueueDepth
	chunks := make(chan stages.Chunk, depth)
	framed := make(chan *stages.Batch, depth)
	verified := make(chan *stages.Batch, depth)
	outbound := make(chan wire.Message, depth)
	p.mu.Lock()
	p.queues = &Queues{
		Chunks:   func() int { return len(chunks) },
		Framed:   func() int { return len(framed) },
		Verified: func() int { return len(verified) },
		Outbound: func() int { return len(outbound) },
		Capacity: depth,
	}
	p.mu.Unlock()

	g, gctx := errgroup.WithContext(ctx)
	// startCtx ends the handler's Start once the inbound stages are done
	// (a recorded stream ran out), not only when something failed.
	startCtx, endStart := context.WithCancel(gctx)
	defer endStart()
	var inbound, producers, all sync.WaitGroup
	inbound.Add(4)   // reader, framer, verifier, dispatcher
	producers.Add(2) // dispatcher and Start feed the writer
	all.Add(5)       // every stage
	stage := func(in bool, f func() error) {
		g.Go(func() error {
			defer all.Done()
			if in {
				defer inbound.Done()
			}
			return f()
		})
	}
	sender := func(ctx context.Context, m wire.Message) error {
		select {
		case outbound <- m:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}

	// Nothing received intact is lost when the connection ends: when the
	// reader fails (the peer closed or reset the connection) or the framer
	// does (bad magic, oversize length, a stream cut mid-frame), the frames
	// already cut are still verified and dispatched before the error is
	// returned and cancels the rest. A frame cut short by the reader's
	// failure is reported as the reader's error, not the framer's.
	dispatched := make(chan struct{})
	var readerFailed atomic.Bool
	afterDispatch := func(err error) error {
		if err != nil && gctx.Err() == nil {
			select {
			case <-dispatched:
			case <-gctx.Done():
			}
		}
		return err
	}
	stage(true, func() error {
		err := p.reader.Run(gctx, nil, chunks)
		if err != nil {
			readerFailed.Store(true)
		}
		close(chunks)
		return afterDispatch(err)
	})
	stage(true, func() error {
		err := p.framer.Run(gctx, chunks, framed)
		close(framed)
		if errors.Is(err, stages.ErrStreamEnded) && readerFailed.Load() {
			return nil
		}
		return afterDispatch(err)
	})
	stage(true, func() error { defer close(verified); return p.verifier.Run(gctx, framed, verified) })
	stage(true, func() error {
		defer producers.Done()
		defer close(dispatched)
		return stages.NewDispatcher(p.handler, p.cfg.Options).Run(gctx, verified, outbound)
	})
	stage(false, func() error { return stages.NewWriter(p.w, p.cfg.Options).Run(gctx, outbound, nil) })
	g.Go(func() error {
		defer producers.Done()
		if err := p.handler.Start(startCtx, sender); err != nil && startCtx.Err() == nil {
			// A handler may name the command in a *stages.Error of its
			// own; the pipeline fills in the peer and the stage.
			se := &stages.Error{Err: err}
			errors.As(err, &se) // keeps se as it is when err holds none
			if se.Peer == "" {
				se.Peer = p.cfg.Options.Peer
			}
			if se.Stage == "" {
				se.Stage = StageSession
			}
			return se
		}
		return nil
	})
	g.Go(func() error { inbound.Wait(); endStart(); return nil })
	g.Go(func() error { producers.Wait(); close(outbound); return nil })
	// Close the connection when anything ends, so a blocked Read returns.
	allDone := make(chan struct{})
	g.Go(func() error { all.Wait(); close(allDone); return nil })
	g.Go(func() error {
		select {
		case <-gctx.Done():
		case <-allDone:
		}
		if p.closer != nil {
			p.closer.Close()
		}
		return nil
	})

	err := g.Wait()
	drain(chunks, framed, verified)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return ctx.Err()
	}
	return err
}

// drain releases what was left in the channels when the pipeline stopped, so
// their slabs go back to the pools.
func drain(chunks chan stages.Chunk, framed, verified chan *stages.Batch) {
	for c := range chunks {
		c.Slab.Release()
	}
	for b := range framed {
		b.Release()
	}
	for b := range verified {
		b.Release()
	}
}
