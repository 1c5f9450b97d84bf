package stages

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/btcpipe/btcpipe/wire"
)

// Stage names, as they appear in errors, logs and metrics.
const (
	StageReader     = "reader"
	StageFramer     = "framer"
	StageVerifier   = "verifier"
	StageDispatcher = "dispatcher"
	StageWriter     = "writer"
)

// Error is a stage's error: it names the peer, the stage and, where one was
// being handled, the command. It unwraps to the cause, so errors.Is works
// with the wire sentinels and io errors.
type Error struct {
	Peer    string
	Stage   string
	Command string
	Err     error
}

func (e *Error) Error() string {
	if e.Command == "" {
		return fmt.Sprintf("peer %s: %s: %v", e.Peer, e.Stage, e.Err)
	}
	return fmt.Sprintf("peer %s: %s: %s: %v", e.Peer, e.Stage, e.Command, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Observer receives what the stages see. Its methods are called from the
// stages' goroutines, several at once, and must be quick and safe for
// concurrent use. Frame payloads passed to it are valid only during the call.
type Observer interface {
	// FrameIn is called by the framer for every frame cut.
	FrameIn(f *wire.Frame)
	// ChecksumFailed is called by a verifier for every frame it drops.
	ChecksumFailed(f *wire.Frame)
	// Decoded is called by the dispatcher for every message it decodes,
	// before the handler; m is valid only during the call.
	Decoded(m wire.Message)
	// DecodeFailed is called by the dispatcher for a payload that does not
	// decode; the message is dropped.
	DecodeFailed(f *wire.Frame, err error)
	// FrameOut is called by the writer for every frame it encodes.
	FrameOut(cmd string, frame []byte)
	// Skipped is called by the framer for every frame of a command the
	// session does not want (Options.Want), which it skips as its bytes
	// arrive without holding them: h is its header (the checksum is not
	// checked), valid only during the call.
	Skipped(h *wire.Header)
}

// NopObserver ignores everything.
type NopObserver struct{}

func (NopObserver) FrameIn(*wire.Frame)               {}
func (NopObserver) ChecksumFailed(*wire.Frame)        {}
func (NopObserver) Decoded(wire.Message)              {}
func (NopObserver) DecodeFailed(*wire.Frame, error)   {}
func (NopObserver) FrameOut(cmd string, frame []byte) {}
func (NopObserver) Skipped(*wire.Header)              {}

// Sender queues a message for the writer, blocking while the queue is full
// (back-pressure) until ctx ends. The message must not be changed after it
// is sent.
type Sender func(ctx context.Context, m wire.Message) error

// Handler is the protocol logic the dispatcher drives.
type Handler interface {
	// Start runs for the life of the connection, beside the stages: it
	// sends the opening messages and runs timers. It returns ctx.Err() when
	// ctx ends, or an error that ends the connection.
	Start(ctx context.Context, send Sender) error
	// Handle is called by the dispatcher, one message at a time, in arrival
	// order. m is valid only during the call. An error ends the connection.
	Handle(ctx context.Context, m wire.Message, send Sender) error
}

// Wanter is implemented by a Handler that wants only some commands; the
// pipeline makes Options.Want from it.
type Wanter interface {
	// Wants lists the commands the handler handles.
	Wants() []string
}

// Wants is a set of commands a session wants delivered. Frames of the
// others (and of commands wire does not know) are skipped by the framer as
// their bytes arrive, so a peer streaming blocks that nobody reads costs no
// memory. A nil *Wants wants everything.
type Wants struct{ mask uint64 } // bit i: wire.KnownCommands[i]

// NewWants returns the set of cmds, each a command of wire's table.
func NewWants(cmds ...string) (*Wants, error) {
	if len(wire.KnownCommands) > 64 {
		panic("stages: Wants holds 64 commands; the table has more")
	}
	w := &Wants{}
	for _, c := range cmds {
		i, ok := wire.CommandIndex(c)
		if !ok {
			return nil, fmt.Errorf("stages: want %q: not a command of the wire table", c)
		}
		w.mask |= 1 << i
	}
	return w, nil
}

// Has reports whether the command of a header (12 NUL-padded bytes) is
// wanted. It does not allocate.
func (w *Wants) Has(raw *[wire.CommandSize]byte) bool {
	if w == nil {
		return true
	}
	i, ok := wire.CommandIndexOf(raw)
	return ok && w.mask&(1<<i) != 0
}

// Commands lists the commands in the set, in the table's order.
func (w *Wants) Commands() []string {
	var out []string
	for i, c := range wire.KnownCommands {
		if w == nil || w.mask&(1<<i) != 0 {
			out = append(out, c)
		}
	}
	return out
}

// ReadHint lets the framer tell the reader how large a frame it is waiting
// for, so the reader can size its next slab to hold such frames whole.
type ReadHint struct{ n atomic.Int64 }

// Set records the size of the frame being waited for.
func (h *ReadHint) Set(n int) {
	if h != nil && int64(n) > h.n.Load() {
		h.n.Store(int64(n))
	}
}

// Get returns the largest frame size seen so far.
func (h *ReadHint) Get() int {
	if h == nil {
		return 0
	}
	return int(h.n.Load())
}

// Options configure the stages of one connection.
type Options struct {
	Peer     string     // for errors
	Magic    wire.Magic // network magic the framer expects
	Observer Observer   // never nil once Defaults ran
	Hint     *ReadHint  // shared by reader and framer; may be nil
	// ReadSize is the reader's base slab size (MinSlab at least).
	ReadSize int
	// Workers is the parallel verifier's worker count.
	Workers int
	// WriteTimeout bounds each write (writers that support deadlines).
	WriteTimeout time.Duration
	// Want is the set of commands the session wants (nil: every one);
	// the framer skips the frames of the others.
	Want *Wants
	// Budget bounds the receive buffers the connection holds (nil: no
	// bound); BudgetWait is the longest the reader waits for room before
	// the connection ends with ErrBudget (0: as long as ctx lasts).
	Budget     *Budget
	BudgetWait time.Duration
	// FatalDecode reports whether a payload of cmd that does not decode
	// (with err) ends the connection; other malformed messages are dropped
	// and reported. By default, as Bitcoin Core: a version or verack that
	// does not decode (the handshake cannot go on), and a list over its
	// limit in any message (Core disconnects and discourages a peer that
	// sends more than 1,000 addresses or 50,000 inventory entries).
	FatalDecode func(cmd string, err error) bool
}

// DefaultFatalDecode is Options.FatalDecode's default.
func DefaultFatalDecode(cmd string, err error) bool {
	return cmd == wire.CmdVersion || cmd == wire.CmdVerack || errors.Is(err, wire.ErrTooManyEntries)
}

// Defaults fills unset options.
func (o Options) Defaults() Options {
	if o.Observer == nil {
		o.Observer = NopObserver{}
	}
	if o.ReadSize < MinSlab {
		o.ReadSize = MinSlab
	}
	if o.Workers <= 0 {
		o.Workers = 2
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 30 * time.Second
	}
	if o.FatalDecode == nil {
		o.FatalDecode = DefaultFatalDecode
	}
	return o
}

func (o Options) errorf(stage, cmd string, err error) error {
	return &Error{Peer: o.Peer, Stage: stage, Command: cmd, Err: err}
}

// send delivers v on out unless ctx ends first.
func send[T any](ctx context.Context, out chan<- T, v T) error {
	select {
	case out <- v:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
