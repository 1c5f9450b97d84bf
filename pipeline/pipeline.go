// Package pipeline assembles the stages of one connection — reader, framer,
// verifier, dispatcher and writer — joined by bounded channels and run under
// an errgroup: when one stage fails or ctx ends, the stages upstream of it
// stop at once, those downstream finish what they were handed, the
// connection is closed (which unblocks the reader) and Run returns once
// every goroutine has, with the error nearest the source.
//
//	conn ──reader──▶ chunks ──framer──▶ batches ──verifier──▶ batches ──dispatcher──▶ outbound ──writer──▶ conn
//	                                                                       │  ▲
//	                                                                  Handler.Handle / Handler.Start
//
// Every stage is chosen by name from a registry (see Stages), and the
// stages that depend on the wire format come as a named bundle, a
// Transport, so an experiment swaps one with an environment variable
// (BTCPIPE_VERIFIER=parallel, BTCPIPE_FRAMER=copy).
package pipeline

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/btcpipe/btcpipe/stages"
	"github.com/btcpipe/btcpipe/wire"
)

// StageSession names the handler's Start (handshake and ping timers) in
// errors, beside the stage names of package stages; StageHandshake names a
// transport's handshake (BIP324's key exchange).
const (
	StageSession   = "session"
	StageHandshake = "handshake"
)

// DefaultQueueDepth is the capacity of each channel between stages.
const DefaultQueueDepth = 16

// Config describes one connection's pipeline.
type Config struct {
	// Options shared by every stage (peer name, magic, observer…).
	Options stages.Options
	// QueueDepth is the capacity of each channel between stages (0:
	// DefaultQueueDepth). It tunes throughput, never correctness.
	QueueDepth int
	// Transport names the bundle of wire-format stages (default "v1");
	// Reader, Framer, Verifier, Dispatcher and Writer name one stage each,
	// overriding the transport's (or the default reader and dispatcher).
	// Empty names take the defaults; see Config.Validate for what may be
	// combined.
	Transport                                    string
	Reader, Framer, Verifier, Dispatcher, Writer string
	// Stages to look names up in; nil means DefaultStages.
	Stages *Stages
	// Record, if set, receives a copy of every byte read.
	Record io.Writer
	// ConnBudget bounds the bytes of receive buffers one connection holds
	// (0: no bound of its own), within Budget, shared by every connection
	// of the process (nil: none); BudgetWait is how long a connection over
	// them waits for room before it ends (see stages.Budget).
	ConnBudget int64
	Budget     *stages.Budget
	BudgetWait time.Duration
	// EndAtEOF ends the pipeline normally when the input ends (a recorded
	// stream) instead of treating EOF as a dropped connection.
	EndAtEOF bool
}

// Validate reports whether the stages cfg names exist and fit together,
// without building anything: the check to run at start, before any
// connection.
func (cfg Config) Validate() error {
	_, err := cfg.stages().resolve(cfg)
	return err
}

func (cfg Config) stages() *Stages {
	if cfg.Stages == nil {
		return DefaultStages
	}
	return cfg.Stages
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
	cfg        Config
	impls      resolved
	env        Env
	link       Link
	reader     Reader
	framer     Framer
	verifier   Verifier
	dispatcher Dispatcher
	writer     Writer
	handler    stages.Handler
	closer     io.Closer
	closeOnce  sync.Once

	mu     sync.Mutex
	queues *Queues
}

// New assembles a pipeline reading r and writing w with the stages cfg
// names; closer (which may be nil) is closed when the pipeline ends, to
// unblock a reader stuck in Read. A handler that is a stages.Wanter gets
// only the commands it wants (unless cfg.Options.Want says otherwise): the
// framer skips the rest unread.
func New(r io.Reader, w io.Writer, closer io.Closer, h stages.Handler, cfg Config) (*Pipeline, error) {
	if cfg.QueueDepth <= 0 {
		cfg.QueueDepth = DefaultQueueDepth
	}
	if cfg.Options.Hint == nil {
		cfg.Options.Hint = new(stages.ReadHint)
	}
	if w, ok := h.(stages.Wanter); ok && cfg.Options.Want == nil {
		want, err := stages.NewWants(w.Wants()...)
		if err != nil {
			return nil, err
		}
		cfg.Options.Want = want
	}
	if cfg.ConnBudget > 0 || cfg.Budget != nil {
		limit := cfg.ConnBudget
		if limit <= 0 {
			limit = math.MaxInt64
		}
		cfg.Options.Budget = stages.NewBudget("connection", limit, cfg.Budget)
		cfg.Options.BudgetWait = cfg.BudgetWait
	}
	cfg.Options = cfg.Options.Defaults()
	impls, err := cfg.stages().resolve(cfg)
	if err != nil {
		return nil, err
	}
	env := Env{Options: cfg.Options, R: r, W: w, Handler: h, Record: cfg.Record, EndAtEOF: cfg.EndAtEOF, Transport: impls.tname}
	p := &Pipeline{cfg: cfg, impls: impls, env: env, handler: h, closer: closer}
	if impls.transport.Handshake == nil { // else Run builds them after it
		if err := p.build(env); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// build builds the five stages from env.
func (p *Pipeline) build(env Env) error {
	return errors.Join(
		build(&p.reader, p.impls.reader, env),
		build(&p.framer, p.impls.framer, env),
		build(&p.verifier, p.impls.verifier, env),
		build(&p.dispatcher, p.impls.dispatcher, env),
		build(&p.writer, p.impls.writer, env),
	)
}

func build[S any](dst *S, im Impl[S], env Env) (err error) {
	*dst, err = im.New(env)
	return err
}

// handshake runs the transport's handshake, if it has one, and builds the
// stages with what it established.
func (p *Pipeline) handshake(ctx context.Context) error {
	hs := p.impls.transport.Handshake
	if hs == nil {
		return nil
	}
	stop := context.AfterFunc(ctx, p.close) // ctx ends a handshake blocked in I/O
	link, err := hs(ctx, struct {
		io.Reader
		io.Writer
	}{p.env.R, p.env.W}, p.env)
	if !stop() || ctx.Err() != nil {
		p.close() // returns once the connection is closed
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if err != nil {
		se := &stages.Error{Err: err}
		errors.As(err, &se)
		if se.Peer == "" {
			se.Peer = p.cfg.Options.Peer
		}
		if se.Stage == "" {
			se.Stage = StageHandshake
		}
		return se
	}
	p.mu.Lock()
	p.link = link
	p.mu.Unlock()
	env := p.env
	env.Link = link
	if len(link.Leftover) > 0 {
		env.R = io.MultiReader(bytes.NewReader(link.Leftover), env.R)
	}
	return p.build(env)
}

// Transport returns the name of the transport and, once its handshake has
// completed, what it established (the session id for logs).
func (p *Pipeline) Transport() (string, Link) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.impls.tname, p.link
}

// Queues returns accessors for the depth of each channel while Run runs,
// or nil before.
func (p *Pipeline) Queues() *Queues {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.queues
}

// Run runs the pipeline until a stage fails, the input ends or ctx ends,
// and returns the error (a *stages.Error for a stage's failure, ctx.Err()
// when ctx ended first, nil when a recorded stream ran out). Every goroutine
// it started has returned when it returns, and the connection is closed.
//
// Nothing received intact is lost: when an inbound stage fails (the peer
// reset the connection, a bad magic), the stages downstream of it still
// handle every frame they were handed (see chain).
func (p *Pipeline) Run(ctx context.Context) error {
	if err := p.handshake(ctx); err != nil {
		p.close()
		return err
	}
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

	err := chain(ctx, p.close,
		stage(p.reader, nil, chunks),
		stage(p.framer, chunks, framed),
		stage(p.verifier, framed, verified),
		link{run: func(ctx context.Context) error { return p.session(ctx, verified, outbound) }, done: func() { close(outbound) }},
		stage(p.writer, outbound, nil),
	)
	p.close() // returns only once the connection is closed
	drain(chunks, framed, verified)
	return err
}

// link is one stage as chain runs it: run is the stage, done closes its
// output once it has returned.
type link struct {
	run  func(context.Context) error
	done func()
}

// stage is the link of s reading in and sending to out: the one place a
// channel between stages is closed.
func stage[In, Out any](s Stage[In, Out], in <-chan In, out chan<- Out) link {
	return link{
		run: func(ctx context.Context) error { return s.Run(ctx, in, out) },
		done: func() {
			if out != nil {
				close(out)
			}
		},
	}
}

// chain runs the stages, in stream order, under an errgroup, each with a
// context of its own nested in the next one's. When a stage fails, its
// context and those of the stages upstream of it end: they stop, and
// stopSource closes the connection so that a blocked Read or Write returns.
// The stages downstream go on until their input closes, handling everything
// they were handed, so one failing stage ends them all without losing what
// was received intact. When every stage has returned, chain returns the
// real error nearest the source — a peer that reset the connection in the
// middle of a frame is reported as the reset, not as the frame it cut
// short; a peer refused by the session is reported as the refusal, not as
// the writer's failure on the connection closed after it — or ctx.Err().
func chain(ctx context.Context, stopSource func(), links ...link) error {
	ctxs := make([]context.Context, len(links))
	cancels := make([]context.CancelFunc, len(links))
	parent := ctx
	for i := len(links) - 1; i >= 0; i-- {
		ctxs[i], cancels[i] = context.WithCancel(parent)
		parent = ctxs[i]
	}
	defer cancels[len(links)-1]() // ends them all
	stop := context.AfterFunc(ctxs[0], stopSource)
	defer stop()
	errs := make([]error, len(links))
	var g errgroup.Group // no shared context: each stage has its own
	for i, l := range links {
		g.Go(func() error {
			err := l.run(ctxs[i])
			// A cause, judged before the output closes (after it, the
			// stages downstream may fail and stop this one's context).
			// The error of a stage that was stopped (its context had
			// ended) is a consequence of what stopped it: a framer whose
			// input closed mid-frame because the session refused the
			// peer did not fail on its own.
			cause := err != nil && ctxs[i].Err() == nil
			if cause {
				errs[i] = err
			}
			l.done()
			if cause {
				cancels[i]()
			}
			return nil
		})
	}
	g.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return ctx.Err()
}

// session runs the dispatcher and, beside it, the handler's Start: the two
// senders of the outbound queue, which closes (chain's link.done) once
// session has returned, that is once both have. Start ends when the dispatcher does (the input ended); an error
// of either ends the other.
func (p *Pipeline) session(ctx context.Context, in <-chan *stages.Batch, out chan<- wire.Message) error {
	g, gctx := errgroup.WithContext(ctx)
	startCtx, endStart := context.WithCancel(gctx)
	defer endStart()
	g.Go(func() error {
		defer endStart()
		return p.dispatcher.Run(gctx, in, out)
	})
	g.Go(func() error {
		send := func(ctx context.Context, m wire.Message) error {
			select {
			case out <- m:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		err := p.handler.Start(startCtx, send)
		if err == nil || startCtx.Err() != nil {
			return nil
		}
		// A handler may name the command in a *stages.Error of its own; the
		// pipeline fills in the peer and the stage.
		se := &stages.Error{Err: err}
		errors.As(err, &se) // keeps se as it is when err holds none
		if se.Peer == "" {
			se.Peer = p.cfg.Options.Peer
		}
		if se.Stage == "" {
			se.Stage = StageSession
		}
		return se
	})
	return g.Wait()
}

// close closes the connection once; a second call returns when the first
// has closed it.
func (p *Pipeline) close() {
	p.closeOnce.Do(func() {
		if p.closer != nil {
			p.closer.Close()
		}
	})
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
