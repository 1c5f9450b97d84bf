package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/btcpipe/btcpipe/stages"
	"github.com/btcpipe/btcpipe/wire"
)

// Stage is the contract every stage meets, in the shape of the Go blog's
// pipelines: Run reads in until it is closed or ctx ends, sends to out, and
// returns; every send and receive selects on ctx.Done(). The runner closes
// out when Run returns, so a stage never closes its output and never sends
// an error down a channel: it returns it. A source ignores in (it is nil)
// and a sink ignores out (nil too).
type Stage[In, Out any] interface {
	Run(ctx context.Context, in <-chan In, out chan<- Out) error
}

// The five kinds of stage, in stream order.
type (
	// Reader is the source: it reads the connection into slabs and sends
	// chunks, each carrying one slab reference for the receiver.
	Reader = Stage[struct{}, stages.Chunk]
	// Framer cuts frames from chunks and hands them on in batches.
	Framer = Stage[stages.Chunk, *stages.Batch]
	// Verifier checks frames (v1: their checksums) and hands on the batches
	// that keep any.
	Verifier = Stage[*stages.Batch, *stages.Batch]
	// Dispatcher decodes frames, drives the Handler and sends its replies;
	// it is the batches' last reader and releases them.
	Dispatcher = Stage[*stages.Batch, wire.Message]
	// Writer is the sink: it encodes messages onto the connection.
	Writer = Stage[wire.Message, struct{}]
)

// Wire formats a framer, verifier or writer speaks. A stage that does not
// depend on the format (the reader, the dispatcher, a pass-through verifier)
// declares none.
const (
	WireV1 = "v1" // the 24-byte header with a SHA-256d checksum
	WireV2 = "v2" // BIP324 encrypted packets
)

// Env is what a stage constructor may use: the connection's options and its
// two byte streams, the handler, and the recording switches. One Env is built
// per connection; a constructor takes what it needs.
type Env struct {
	Options stages.Options
	// R is what the reader reads (the connection), W what the writer writes.
	R io.Reader
	W io.Writer
	// Handler is the protocol logic the dispatcher drives.
	Handler stages.Handler
	// Record, if set, receives a copy of every byte read.
	Record io.Writer
	// EndAtEOF makes the end of R a normal end (a recorded stream).
	EndAtEOF bool
	// Transport is the name of the transport in use, and Link what its
	// handshake established (zero when it has none).
	Transport string
	Link      Link
}

// Impl is one registered implementation of a stage of type S.
type Impl[S any] struct {
	// New builds the stage for one connection.
	New func(Env) (S, error)
	// Wire is the wire format the stage speaks (WireV1, WireV2), or "" when
	// it works with any.
	Wire string
	// Doc says in a line what the implementation is for (btcpipe help).
	Doc string
}

// ErrDuplicate is returned by Register for a name already taken.
var ErrDuplicate = errors.New("name already registered")

// Registry maps names to values of one kind — stage implementations
// (Impl[Framer], …) or transports — so configuration can pick one by name.
// It is safe for concurrent use.
type Registry[T any] struct {
	kind string
	mu   sync.RWMutex
	m    map[string]T
}

// NewRegistry returns an empty registry; kind ("framer") names it in errors.
func NewRegistry[T any](kind string) *Registry[T] {
	return &Registry[T]{kind: kind, m: map[string]T{}}
}

// Kind returns what the registry holds ("framer", "transport", …).
func (r *Registry[T]) Kind() string { return r.kind }

// Register adds v as name. It refuses an empty name and one already taken
// (ErrDuplicate): a registration never silently replaces another.
func (r *Registry[T]) Register(name string, v T) error {
	if name == "" {
		return fmt.Errorf("pipeline: %s: empty name", r.kind)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.m[name]; ok {
		return fmt.Errorf("pipeline: %s %q: %w", r.kind, name, ErrDuplicate)
	}
	r.m[name] = v
	return nil
}

// MustRegister is Register for the registrations of a program's start,
// which cannot fail unless the program is wrong: it panics on an error.
func (r *Registry[T]) MustRegister(name string, v T) {
	if err := r.Register(name, v); err != nil {
		panic(err)
	}
}

// Get returns the value registered as name, or an error naming the kind,
// the name and the names there are.
func (r *Registry[T]) Get(name string) (T, error) {
	r.mu.RLock()
	v, ok := r.m[name]
	r.mu.RUnlock()
	if !ok {
		return v, fmt.Errorf("unknown %s %q (have %s)", r.kind, name, strings.Join(r.Names(), ", "))
	}
	return v, nil
}

// Names returns the registered names, sorted.
func (r *Registry[T]) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Sorted(maps.Keys(r.m))
}

// Clone returns a registry with the same entries, to add to without
// touching r.
func (r *Registry[T]) Clone() *Registry[T] {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return &Registry[T]{kind: r.kind, m: maps.Clone(r.m)}
}

// Transport is a named bundle of the stages that depend on the wire format:
// the framer, the verifier and the writer. Config.Transport picks one;
// Config.Framer, Verifier and Writer may still override one stage of it, if
// the stage speaks the transport's wire format.
type Transport struct {
	Wire                     string // WireV1 or WireV2
	Framer, Verifier, Writer string // names in the framer, verifier and writer registries
	Doc                      string
	// Handshake, if set, runs on the connection when the pipeline starts,
	// before any stage (BIP324's key exchange), and returns what it
	// established; the stages are built after it, with it in Env.Link.
	// ctx ends it (the connection is closed then). Its error ends the
	// pipeline; Run reports it as a *stages.Error of stage "handshake".
	Handshake func(ctx context.Context, rw io.ReadWriter, env Env) (Link, error)
}

// Link is what a transport's handshake established.
type Link struct {
	// State is for the transport's stages (BIP324: the ciphers).
	State any
	// Leftover holds bytes the handshake read past its end: the reader
	// hands them on before anything it reads.
	Leftover []byte
	// SessionID identifies the session in logs (BIP324's, in hex); empty
	// for a transport without one.
	SessionID string
}

// Stages is the set of registries a pipeline takes its stages from: one per
// kind of stage, and the transports.
type Stages struct {
	Readers     *Registry[Impl[Reader]]
	Framers     *Registry[Impl[Framer]]
	Verifiers   *Registry[Impl[Verifier]]
	Dispatchers *Registry[Impl[Dispatcher]]
	Writers     *Registry[Impl[Writer]]
	Transports  *Registry[Transport]
}

// NewStages returns an empty set of registries.
func NewStages() *Stages {
	return &Stages{
		Readers:     NewRegistry[Impl[Reader]]("reader"),
		Framers:     NewRegistry[Impl[Framer]]("framer"),
		Verifiers:   NewRegistry[Impl[Verifier]]("verifier"),
		Dispatchers: NewRegistry[Impl[Dispatcher]]("dispatcher"),
		Writers:     NewRegistry[Impl[Writer]]("writer"),
		Transports:  NewRegistry[Transport]("transport"),
	}
}

// Clone returns a copy of s to register more implementations in (a test,
// an experiment) without changing s.
func (s *Stages) Clone() *Stages {
	return &Stages{
		Readers: s.Readers.Clone(), Framers: s.Framers.Clone(), Verifiers: s.Verifiers.Clone(),
		Dispatchers: s.Dispatchers.Clone(), Writers: s.Writers.Clone(), Transports: s.Transports.Clone(),
	}
}

// Names of the implementations btcpipe ships (see DefaultStages).
const (
	ReaderSlab           = "slab"
	FramerSlab           = "slab"
	FramerCopy           = "copy"
	VerifierSequential   = stages.VerifierSequential
	VerifierParallel     = stages.VerifierParallel
	DispatcherDecode     = "decode"
	WriterCoalescing     = "coalescing"
	WriterDirect         = "direct"
	TransportV1          = "v1"
	DefaultReader        = ReaderSlab
	DefaultDispatcher    = DispatcherDecode
	DefaultTransportName = TransportV1
)

// DefaultStages holds every implementation btcpipe ships; a Config with no
// Stages uses it. Register into it (at start) to make an implementation of
// one's own selectable from the environment, or into a Clone for a test.
var DefaultStages = func() *Stages {
	s := NewStages()
	s.Readers.MustRegister(ReaderSlab, Impl[Reader]{
		Doc: "reads into pooled, reference-counted slabs sized from the largest frame seen",
		New: func(e Env) (Reader, error) {
			r := stages.NewReader(e.R, e.Options)
			r.Tee, r.EndAtEOF = e.Record, e.EndAtEOF
			return r, nil
		},
	})
	s.Framers.MustRegister(FramerSlab, Impl[Framer]{
		Wire: WireV1, Doc: "cuts frames in place in the reader's slabs: zero-copy (default)",
		New: func(e Env) (Framer, error) { return stages.NewFramer(e.Options), nil },
	})
	s.Framers.MustRegister(FramerCopy, Impl[Framer]{
		Wire: WireV1, Doc: "copies bytes into a rolling buffer and frames into a fresh slab: the baseline zero-copy is measured against",
		New: func(e Env) (Framer, error) { return stages.NewCopyFramer(e.Options), nil },
	})
	s.Verifiers.MustRegister(VerifierSequential, Impl[Verifier]{
		Wire: WireV1, Doc: "checks each frame's SHA-256d checksum on one goroutine (default)",
		New: func(e Env) (Verifier, error) { return stages.NewSequentialVerifier(e.Options), nil },
	})
	s.Verifiers.MustRegister(VerifierParallel, Impl[Verifier]{
		Wire: WireV1, Doc: "checks checksums on BTCPIPE_WORKERS goroutines, keeping the order: for large messages and spare cores",
		New: func(e Env) (Verifier, error) { return stages.NewParallelVerifier(e.Options), nil },
	})
	s.Dispatchers.MustRegister(DispatcherDecode, Impl[Dispatcher]{
		Doc: "decodes each frame with a reused decoder and hands it to the session, in order",
		New: func(e Env) (Dispatcher, error) { return stages.NewDispatcher(e.Handler, e.Options), nil },
	})
	s.Writers.MustRegister(WriterCoalescing, Impl[Writer]{
		Wire: WireV1, Doc: "gathers the messages queued together into one write of up to 64 KiB: fewer system calls (default)",
		New: func(e Env) (Writer, error) { return stages.NewWriter(e.W, e.Options), nil },
	})
	s.Writers.MustRegister(WriterDirect, Impl[Writer]{
		Wire: WireV1, Doc: "writes each message as it comes: one system call per message, no wait behind others",
		New: func(e Env) (Writer, error) { return stages.NewDirectWriter(e.W, e.Options), nil },
	})
	s.Transports.MustRegister(TransportV1, Transport{
		Wire: WireV1, Framer: FramerSlab, Verifier: VerifierSequential, Writer: WriterCoalescing,
		Doc: "the original transport: 24-byte headers, SHA-256d checksums, cleartext (default)",
	})
	registerV2(s) // BIP324: framer, verifier, writer and transport "v2" (v2.go)
	return s
}()

// resolved is a Selection looked up: the implementations to build.
type resolved struct {
	tname      string
	transport  Transport
	reader     Impl[Reader]
	framer     Impl[Framer]
	verifier   Impl[Verifier]
	dispatcher Impl[Dispatcher]
	writer     Impl[Writer]
}

// resolve looks up every stage sel names (its Transport, Reader, Framer,
// Verifier, Dispatcher and Writer; the rest of it is unused) and checks that they can work
// together: each of the framer, verifier and writer must speak the
// transport's wire format (a v1 framer under a v2 writer is refused).
func (s *Stages) resolve(sel Config) (resolved, error) {
	var r resolved
	var err error
	tname := or(sel.Transport, DefaultTransportName)
	r.tname = tname
	if r.transport, err = s.Transports.Get(tname); err != nil {
		return r, fmt.Errorf("pipeline: %w", err)
	}
	t := r.transport
	var errs []error
	look := func(err error) { errs = append(errs, err) }
	var e error
	r.reader, e = s.Readers.Get(or(sel.Reader, DefaultReader))
	look(e)
	r.framer, e = s.Framers.Get(or(sel.Framer, t.Framer))
	look(e)
	look(speaks(s.Framers.Kind(), or(sel.Framer, t.Framer), r.framer.Wire, tname, t.Wire, e))
	r.verifier, e = s.Verifiers.Get(or(sel.Verifier, t.Verifier))
	look(e)
	look(speaks(s.Verifiers.Kind(), or(sel.Verifier, t.Verifier), r.verifier.Wire, tname, t.Wire, e))
	r.dispatcher, e = s.Dispatchers.Get(or(sel.Dispatcher, DefaultDispatcher))
	look(e)
	r.writer, e = s.Writers.Get(or(sel.Writer, t.Writer))
	look(e)
	look(speaks(s.Writers.Kind(), or(sel.Writer, t.Writer), r.writer.Wire, tname, t.Wire, e))
	if err := errors.Join(errs...); err != nil {
		return r, fmt.Errorf("pipeline: %w", err)
	}
	return r, nil
}

// speaks checks that a stage's wire format fits the transport's.
func speaks(kind, name, wire, transport, twire string, lookErr error) error {
	if lookErr != nil || wire == "" || wire == twire {
		return nil
	}
	return fmt.Errorf("%s %q speaks %s, but transport %q is %s", kind, name, wire, transport, twire)
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Entry describes one registered implementation, for listings.
type Entry struct {
	Name, Wire, Doc string
	Default         bool
}

// Kind is one kind of stage (or the transports) with its implementations,
// for listings: btcpipe help, the README, the benchmark table.
type Kind struct {
	Kind    string // "transport", "reader", …
	Entries []Entry
}

// Catalog lists the transports and every kind of stage, in stream order,
// with their implementations and which is the default.
func (s *Stages) Catalog() []Kind {
	def, _ := s.Transports.Get(DefaultTransportName)
	defaults := map[string]string{
		s.Transports.Kind(): DefaultTransportName, s.Readers.Kind(): DefaultReader,
		s.Framers.Kind(): def.Framer, s.Verifiers.Kind(): def.Verifier,
		s.Dispatchers.Kind(): DefaultDispatcher, s.Writers.Kind(): def.Writer,
	}
	var out []Kind
	add := func(kind string, names []string, describe func(string) (wire, doc string)) {
		k := Kind{Kind: kind}
		for _, n := range names {
			w, d := describe(n)
			k.Entries = append(k.Entries, Entry{Name: n, Wire: w, Doc: d, Default: defaults[kind] == n})
		}
		out = append(out, k)
	}
	add(s.Transports.Kind(), s.Transports.Names(), func(n string) (string, string) {
		t, _ := s.Transports.Get(n)
		return t.Wire, t.Doc
	})
	add(s.Readers.Kind(), s.Readers.Names(), describe(s.Readers))
	add(s.Framers.Kind(), s.Framers.Names(), describe(s.Framers))
	add(s.Verifiers.Kind(), s.Verifiers.Names(), describe(s.Verifiers))
	add(s.Dispatchers.Kind(), s.Dispatchers.Names(), describe(s.Dispatchers))
	add(s.Writers.Kind(), s.Writers.Names(), describe(s.Writers))
	return out
}

func describe[S any](r *Registry[Impl[S]]) func(string) (string, string) {
	return func(n string) (string, string) {
		im, _ := r.Get(n)
		return im.Wire, im.Doc
	}
}

// Names is the name of each stage a Config selects, defaults filled in: for
// logs and listings.
type Names struct {
	Transport, Reader, Framer, Verifier, Dispatcher, Writer string
}

// Names returns the stages cfg selects (names that do not resolve are
// returned as given; Validate reports them).
func (cfg Config) Names() Names {
	n := Names{Transport: or(cfg.Transport, DefaultTransportName)}
	t, _ := cfg.stages().Transports.Get(n.Transport)
	n.Reader = or(cfg.Reader, DefaultReader)
	n.Framer = or(cfg.Framer, t.Framer)
	n.Verifier = or(cfg.Verifier, t.Verifier)
	n.Dispatcher = or(cfg.Dispatcher, DefaultDispatcher)
	n.Writer = or(cfg.Writer, t.Writer)
	return n
}
