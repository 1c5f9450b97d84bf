package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/btcpipe/btcpipe/internal/fakepeer"
	"github.com/btcpipe/btcpipe/pipeline"
	"github.com/btcpipe/btcpipe/stages"
	"github.com/btcpipe/btcpipe/wire"
)

var magic = wire.Regtest.Magic

func encode(ms ...wire.Message) []byte {
	var b []byte
	for _, m := range ms {
		b = wire.AppendMessage(b, magic, m)
	}
	return b
}

// testHandler sends hello from Start, answers pings, records the commands
// it handles, and fails on failOn.
type testHandler struct {
	hello    []wire.Message
	startErr error // returned by Start once hello is sent
	failOn   string

	mu       sync.Mutex
	cmds     []string
	startEnd chan error    // what Start returned
	sent     chan struct{} // closed once hello is queued
	sentOnce sync.Once
}

// gateReader reads r, and at its end waits for gate before it reports
// EOF: a stream that must not end before something has happened.
type gateReader struct {
	r    io.Reader
	gate <-chan struct{}
}

func (g gateReader) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	if err == io.EOF {
		<-g.gate
	}
	return n, err
}

var errHandler = errors.New("handler refuses this")

func newTestHandler(hello ...wire.Message) *testHandler {
	return &testHandler{hello: hello, startEnd: make(chan error, 1), sent: make(chan struct{})}
}

func (h *testHandler) Start(ctx context.Context, send stages.Sender) (err error) {
	defer func() { h.startEnd <- err }()
	for _, m := range h.hello {
		if err := send(ctx, m); err != nil {
			return err
		}
	}
	h.sentOnce.Do(func() { close(h.sent) })
	if h.startErr != nil {
		return h.startErr
	}
	<-ctx.Done()
	return ctx.Err()
}

func (h *testHandler) Handle(ctx context.Context, m wire.Message, send stages.Sender) error {
	h.mu.Lock()
	h.cmds = append(h.cmds, m.Command())
	h.mu.Unlock()
	if m.Command() == h.failOn {
		return errHandler
	}
	if p, ok := m.(*wire.Ping); ok {
		return send(ctx, &wire.Pong{Nonce: p.Nonce})
	}
	return nil
}

func (h *testHandler) commands() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.cmds)
}

// connect returns our end of a loopback TCP connection and the fake
// peer's end.
func connect(t *testing.T, ctx context.Context) (net.Conn, *fakepeer.Conn) {
	t.Helper()
	p := fakepeer.Listen(t, &wire.Regtest, fakepeer.Options{})
	conn, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fc, err := p.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return conn, fc
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// runAsync runs p and returns a channel with Run's result.
func runAsync(ctx context.Context, p *pipeline.Pipeline) <-chan error {
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()
	return errc
}

// wait returns Run's result, failing the test if it takes over 2 s.
func wait(t *testing.T, errc <-chan error) error {
	t.Helper()
	select {
	case err := <-errc:
		return err
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return within 2s")
		return nil
	}
}

// closeRecorder records that it was closed, and closes c.
type closeRecorder struct {
	io.Closer
	closed chan struct{}
	once   sync.Once
}

func (c *closeRecorder) Close() error {
	c.once.Do(func() { close(c.closed) })
	if c.Closer != nil {
		return c.Closer.Close()
	}
	return nil
}

func TestPipelineOverTCP(t *testing.T) {
	for _, sel := range variants() {
		t.Run(sel.name(), func(t *testing.T) {
			ctx := testCtx(t)
			conn, fc := connect(t, ctx)
			h := newTestHandler(&wire.Verack{}, &wire.GetAddr{})
			counters := new(pipeline.Counters)
			var record bytes.Buffer
			p, err := pipeline.New(conn, conn, conn, h, pipeline.Config{
				Options: stages.Options{Peer: "fake", Magic: magic, Observer: counters},
				Framer:  sel.framer, Verifier: sel.verifier, Writer: sel.writer, QueueDepth: 2, Record: &record,
			})
			if err != nil {
				t.Fatal(err)
			}
			if p.Queues() != nil {
				t.Errorf("Queues() before Run = non-nil, want nil")
			}
			errc := runAsync(ctx, p)

			// What Start sends arrives first, in order.
			for _, cmd := range []string{wire.CmdVerack, wire.CmdGetAddr} {
				if _, err := fc.Expect(ctx, cmd); err != nil {
					t.Fatal(err)
				}
			}
			// A large message, a bad checksum and an unknown command among
			// pings: every ping is answered, in order.
			in := encode(&wire.Ping{Nonce: 1, HasNonce: true}, &wire.Raw{Cmd: wire.CmdTx, Payload: make([]byte, 200<<10)})
			in = append(in, fakepeer.BadChecksum(magic, &wire.Ping{Nonce: 2, HasNonce: true})...)
			in = append(in, encode(&wire.Raw{Cmd: "xyzzy"}, &wire.Ping{Nonce: 3, HasNonce: true})...)
			if err := fc.SendRaw(ctx, in); err != nil {
				t.Fatal(err)
			}
			for _, want := range []uint64{1, 3} {
				m, err := fc.Expect(ctx, wire.CmdPong)
				if err != nil {
					t.Fatal(err)
				}
				if got := m.(*wire.Pong).Nonce; got != want {
					t.Errorf("pong nonce %d, want %d", got, want)
				}
			}
			if q := p.Queues(); q == nil || q.Capacity != 2 {
				t.Errorf("Queues() while running = %+v, want capacity 2", q)
			}
			fc.Close() // the peer hangs up
			err = wait(t, errc)
			var se *stages.Error
			if !errors.As(err, &se) || se.Stage != stages.StageReader || !errors.Is(err, io.EOF) {
				t.Errorf("Run after the peer closed = %v, want a reader *stages.Error wrapping io.EOF", err)
			}
			if got, want := h.commands(), []string{"ping", "tx", "xyzzy", "ping"}; !slices.Equal(got, want) {
				t.Errorf("handler saw %v, want %v", got, want)
			}
			if !bytes.Equal(record.Bytes(), in) {
				t.Errorf("Record got %d bytes, want the %d bytes the peer sent", record.Len(), len(in))
			}
			for name, c := range map[string]struct{ got, want int64 }{
				"FramesIn":         {counters.FramesIn.Load(), 5},
				"ChecksumFailures": {counters.ChecksumFailures.Load(), 1},
				"Unknown":          {counters.Unknown.Load(), 1},
				"FramesOut":        {counters.FramesOut.Load(), 4},
				"DecodeFailures":   {counters.DecodeFailures.Load(), 0},
			} {
				if c.got != c.want {
					t.Errorf("Counters.%s = %d, want %d", name, c.got, c.want)
				}
			}
		})
	}
}

// variant is one combination of the v1 stages that have a choice.
type variant struct{ framer, verifier, writer string }

func (v variant) name() string { return v.framer + "+" + v.verifier + "+" + v.writer }

// variants lists every combination of the framers, verifiers and writers
// of the default stages that speak v1: each test runs over all of them.
func variants() []variant {
	s := pipeline.DefaultStages
	v1 := func(names []string, wire func(string) string) []string {
		var out []string
		for _, n := range names {
			if w := wire(n); w == "" || w == pipeline.WireV1 {
				out = append(out, n)
			}
		}
		return out
	}
	var out []variant
	for _, f := range v1(s.Framers.Names(), func(n string) string { im, _ := s.Framers.Get(n); return im.Wire }) {
		for _, v := range v1(s.Verifiers.Names(), func(n string) string { im, _ := s.Verifiers.Get(n); return im.Wire }) {
			for _, w := range v1(s.Writers.Names(), func(n string) string { im, _ := s.Writers.Get(n); return im.Wire }) {
				out = append(out, variant{f, v, w})
			}
		}
	}
	return out
}

// blockingReader blocks in Read until closed, like an idle connection.
type blockingReader struct {
	closed chan struct{}
	once   sync.Once
}

func newBlockingReader() *blockingReader { return &blockingReader{closed: make(chan struct{})} }

func (r *blockingReader) Read([]byte) (int, error) { <-r.closed; return 0, net.ErrClosed }
func (r *blockingReader) Close() error             { r.once.Do(func() { close(r.closed) }); return nil }

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

func TestPipelineFirstErrorCancelsAll(t *testing.T) {
	errWrite := errors.New("write failed")
	errStart := errors.New("start failed")
	tests := []struct {
		name      string
		input     []byte // what the peer sends (then it stays silent)
		failOn    string // the handler fails on this command
		startErr  error
		w         io.Writer
		wantStage string // "" : the error is wantErr itself
		wantErr   error
	}{
		{name: "framer: bad magic", input: append(encode(&wire.Verack{}), wire.AppendMessage(nil, wire.Mainnet.Magic, &wire.Verack{})...),
			wantStage: stages.StageFramer, wantErr: wire.ErrBadMagic},
		{name: "framer: oversize header", input: func() []byte {
			b := encode(&wire.Ping{Nonce: 1, HasNonce: true})
			b[16], b[17], b[18], b[19] = 0xff, 0xff, 0xff, 0x00
			return b[:24]
		}(), wantStage: stages.StageFramer, wantErr: wire.ErrPayloadTooLarge},
		{name: "dispatcher: handler error", input: encode(&wire.Verack{}, &wire.GetAddr{}), failOn: wire.CmdGetAddr,
			wantStage: stages.StageDispatcher, wantErr: errHandler},
		{name: "dispatcher: malformed version", input: wire.AppendFrame(nil, magic, wire.CmdVersion, []byte{1, 2, 3}),
			wantStage: stages.StageDispatcher, wantErr: wire.ErrTruncated},
		{name: "writer: write error", w: failingWriter{errWrite}, wantStage: stages.StageWriter, wantErr: errWrite},
		{name: "handler Start error", startErr: errStart, wantErr: errStart},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newBlockingReader()
			var in io.Reader = r
			if tt.input != nil {
				in = io.MultiReader(bytes.NewReader(tt.input), r)
			}
			w := tt.w
			if w == nil {
				w = io.Discard
			}
			closer := &closeRecorder{Closer: r, closed: make(chan struct{})}
			h := newTestHandler(&wire.Verack{})
			h.failOn, h.startErr = tt.failOn, tt.startErr
			p, err := pipeline.New(in, w, closer, h, pipeline.Config{Options: stages.Options{Peer: "p", Magic: magic}})
			if err != nil {
				t.Fatal(err)
			}
			err = wait(t, runAsync(t.Context(), p))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Run = %v, want it to wrap %v", err, tt.wantErr)
			}
			if tt.wantStage != "" {
				var se *stages.Error
				if !errors.As(err, &se) || se.Stage != tt.wantStage || se.Peer != "p" {
					t.Errorf("Run = %#v, want a *stages.Error from %s naming peer p", err, tt.wantStage)
				}
			}
			select {
			case <-closer.closed:
			default:
				t.Errorf("the connection was not closed")
			}
			select {
			case <-h.startEnd: // Start's ctx was cancelled, or it failed
			default:
				t.Errorf("Start had not returned when Run did")
			}
		})
	}
}

func TestPipelineStopsWithContext(t *testing.T) {
	for _, sel := range variants() {
		t.Run(sel.name(), func(t *testing.T) {
			ctx := testCtx(t)
			conn, fc := connect(t, ctx)
			h := newTestHandler(&wire.Verack{})
			p, err := pipeline.New(conn, conn, conn, h, pipeline.Config{Options: stages.Options{Magic: magic}, Framer: sel.framer, Verifier: sel.verifier, Writer: sel.writer})
			if err != nil {
				t.Fatal(err)
			}
			runCtx, cancel := context.WithCancel(ctx)
			errc := runAsync(runCtx, p)
			if _, err := fc.Expect(ctx, wire.CmdVerack); err != nil {
				t.Fatal(err)
			}
			// Some traffic in flight, then the cancellation.
			if err := fc.SendRaw(ctx, encode(&wire.Ping{Nonce: 1, HasNonce: true}, &wire.Raw{Cmd: wire.CmdBlock, Payload: make([]byte, 1<<20)})); err != nil {
				t.Fatal(err)
			}
			cancel()
			start := time.Now()
			if err := wait(t, errc); err != context.Canceled {
				t.Errorf("Run = %v, want context.Canceled", err)
			}
			if d := time.Since(start); d > 500*time.Millisecond {
				t.Errorf("Run took %s to return after cancel, want it prompt", d)
			}
			if err := fc.ExpectClosed(ctx); err != nil {
				t.Errorf("the peer did not see the connection close: %v", err)
			}
		})
	}

	t.Run("deadline", func(t *testing.T) {
		r := newBlockingReader()
		p, err := pipeline.New(r, io.Discard, r, newTestHandler(), pipeline.Config{Options: stages.Options{Magic: magic}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		defer cancel()
		if err := wait(t, runAsync(ctx, p)); err != context.DeadlineExceeded {
			t.Errorf("Run = %v, want context.DeadlineExceeded", err)
		}
	})
}

func TestPipelineEndAtEOF(t *testing.T) {
	stream := encode(&wire.Version{Protocol: 70016, UserAgent: "/x/"}, &wire.Verack{}, &wire.Ping{Nonce: 1, HasNonce: true},
		&wire.Addr{}, &wire.Raw{Cmd: "unknown"})
	tests := []struct {
		name      string
		stream    []byte
		wantErr   error
		wantCmds  []string
		wantPongs int
	}{
		{name: "whole stream", stream: stream, wantCmds: []string{"version", "verack", "ping", "addr", "unknown"}, wantPongs: 1},
		{name: "empty stream", stream: nil},
		{name: "cut mid-frame", stream: stream[:len(stream)-3], wantErr: stages.ErrStreamEnded,
			wantCmds: []string{"version", "verack", "ping", "addr"}},
	}
	for _, tt := range tests {
		for _, sel := range variants() {
			t.Run(tt.name+"/"+sel.name(), func(t *testing.T) {
				h := newTestHandler()
				var out bytes.Buffer
				p, err := pipeline.New(bytes.NewReader(tt.stream), &out, nil, h, pipeline.Config{
					Options: stages.Options{Magic: magic}, Framer: sel.framer, Verifier: sel.verifier, Writer: sel.writer, EndAtEOF: true,
				})
				if err != nil {
					t.Fatal(err)
				}
				err = wait(t, runAsync(t.Context(), p))
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Run = %v, want %v", err, tt.wantErr)
				}
				// Every frame cut before the damage is handled before the
				// framer's error ends the pipeline.
				if got := h.commands(); !slices.Equal(got, tt.wantCmds) {
					t.Errorf("handler saw %v, want %v", got, tt.wantCmds)
				}
				if tt.wantErr != nil {
					return
				}
				// Everything the handler sent before the end was written.
				if got, want := out.Len(), tt.wantPongs*len(encode(&wire.Pong{})); got != want {
					t.Errorf("wrote %d bytes, want %d (%d pongs)", got, want, tt.wantPongs)
				}
			})
		}
	}
}

// TestPipelineReaderErrorLosesNothing: a peer that sends messages and then
// drops the connection (here, the reader fails after the last byte, in the
// middle of a frame) has every complete message handled, and the error is
// the reader's, naming the stage.
func TestPipelineReaderErrorLosesNothing(t *testing.T) {
	stream := encode(&wire.Verack{}, &wire.Addr{}, &wire.Ping{Nonce: 9, HasNonce: true}, &wire.Addr{})
	stream = append(stream, encode(&wire.Ping{Nonce: 10, HasNonce: true})[:10]...) // a frame cut short
	errReset := errors.New("connection reset by peer")
	for _, sel := range variants() {
		t.Run(sel.name(), func(t *testing.T) {
			for range 20 { // the order of the goroutines varies run to run
				h := newTestHandler()
				r := io.MultiReader(bytes.NewReader(stream), iotest.ErrReader(errReset))
				p, err := pipeline.New(r, io.Discard, nil, h, pipeline.Config{
					Options: stages.Options{Magic: magic, Peer: "peer1"}, Framer: sel.framer, Verifier: sel.verifier, Writer: sel.writer,
				})
				if err != nil {
					t.Fatal(err)
				}
				err = wait(t, runAsync(t.Context(), p))
				var se *stages.Error
				if !errors.Is(err, errReset) || !errors.As(err, &se) || se.Stage != stages.StageReader || se.Peer != "peer1" {
					t.Fatalf("Run = %v, want the reader's error naming peer1", err)
				}
				if got, want := h.commands(), []string{"verack", "addr", "ping", "addr"}; !slices.Equal(got, want) {
					t.Fatalf("handler saw %v, want %v", got, want)
				}
			}
		})
	}
}

// countingVerifier is a custom verifier: it passes batches on unverified,
// counting them.
type countingVerifier struct{ batches *int }

func (v countingVerifier) Run(ctx context.Context, in <-chan *stages.Batch, out chan<- *stages.Batch) error {
	for b := range in {
		*v.batches++
		select {
		case out <- b:
		case <-ctx.Done():
			b.Release()
			return ctx.Err()
		}
	}
	return nil
}

func TestRegistry(t *testing.T) {
	s := pipeline.DefaultStages
	for _, c := range []struct {
		kind      string
		got, want []string
	}{
		{"transports", s.Transports.Names(), []string{"v1", "v2"}},
		{"readers", s.Readers.Names(), []string{"slab"}},
		{"framers", s.Framers.Names(), []string{"copy", "slab", "v2"}},
		{"verifiers", s.Verifiers.Names(), []string{"parallel", "sequential", "v2"}},
		{"dispatchers", s.Dispatchers.Names(), []string{"decode"}},
		{"writers", s.Writers.Names(), []string{"coalescing", "direct", "v2"}},
	} {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("DefaultStages %s = %v, want %v", c.kind, c.got, c.want)
		}
	}
	for _, cfg := range []pipeline.Config{
		{Verifier: "nope"}, {Framer: "nope"}, {Reader: "nope"}, {Dispatcher: "nope"}, {Writer: "nope"}, {Transport: "nope"},
	} {
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), `"nope"`) || !strings.Contains(err.Error(), "have ") {
			t.Errorf("Validate(%+v) = %v, want an error naming %q and the known names", cfg, err, "nope")
		}
		if _, err2 := pipeline.New(bytes.NewReader(nil), io.Discard, nil, newTestHandler(), cfg); err2 == nil || err2.Error() != err.Error() {
			t.Errorf("New(%+v) = %v, want Validate's error %v", cfg, err2, err)
		}
	}
}

func TestRegistryRefusesDuplicates(t *testing.T) {
	r := pipeline.DefaultStages.Clone().Verifiers
	err := r.Register(pipeline.VerifierSequential, pipeline.Impl[pipeline.Verifier]{})
	if !errors.Is(err, pipeline.ErrDuplicate) || !strings.Contains(err.Error(), `verifier "sequential"`) {
		t.Errorf("Register of a taken name = %v, want ErrDuplicate naming it", err)
	}
	if err := r.Register("", pipeline.Impl[pipeline.Verifier]{}); err == nil {
		t.Error("Register of an empty name succeeded")
	}
	// A clone is independent of what it was cloned from.
	if err := r.Register("extra", pipeline.Impl[pipeline.Verifier]{}); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(pipeline.DefaultStages.Verifiers.Names(), "extra") {
		t.Error("registering in a clone changed DefaultStages")
	}
}

func TestRegistryConcurrent(t *testing.T) {
	r := pipeline.NewRegistry[int]("thing")
	var wg sync.WaitGroup
	var dup sync.Map
	for i := range 64 {
		wg.Go(func() {
			name := fmt.Sprint("n", i%16)
			if err := r.Register(name, i); errors.Is(err, pipeline.ErrDuplicate) {
				dup.Store(i, true)
			} else if err != nil {
				t.Error(err)
			}
			_, _ = r.Get(name)
			_ = r.Names()
		})
	}
	wg.Wait()
	dups := 0
	dup.Range(func(any, any) bool { dups++; return true })
	if got := len(r.Names()); got != 16 || dups != 48 {
		t.Errorf("64 registrations of 16 names: %d names and %d duplicates refused, want 16 and 48", got, dups)
	}
}

// v2Framer stands for a framer of another wire format.
var v2Framer = pipeline.Impl[pipeline.Framer]{
	Wire: pipeline.WireV2,
	New:  func(e pipeline.Env) (pipeline.Framer, error) { return stages.NewFramer(e.Options), nil },
}

func TestRegistryRefusesMixedWireFormats(t *testing.T) {
	s := pipeline.DefaultStages.Clone()
	s.Framers.MustRegister("other", v2Framer)
	err := pipeline.Config{Stages: s, Framer: "other"}.Validate()
	if err == nil || !strings.Contains(err.Error(), `framer "other" speaks v2, but transport "v1" is v1`) {
		t.Errorf("a v2 framer in the v1 transport: %v, want it refused naming both", err)
	}
	// A transport whose own bundle mixes formats is refused too.
	s.Transports.MustRegister("mixed", pipeline.Transport{Wire: pipeline.WireV2, Framer: "other", Verifier: "sequential", Writer: "coalescing"})
	err = pipeline.Config{Stages: s, Transport: "mixed"}.Validate()
	for _, want := range []string{`verifier "sequential" speaks v1`, `writer "coalescing" speaks v1`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("transport mixed: %v, want it to say %s", err, want)
		}
	}
	// A stage without a wire format (the pass-through verifier of the
	// Example) fits any transport.
	s.Verifiers.MustRegister("any", pipeline.Impl[pipeline.Verifier]{
		New: func(pipeline.Env) (pipeline.Verifier, error) { return countingVerifier{new(int)}, nil },
	})
	if err := (pipeline.Config{Stages: s, Verifier: "any"}).Validate(); err != nil {
		t.Errorf("a verifier of no wire format: %v", err)
	}
}

// A constructor's error is New's error.
func TestRegistryConstructorError(t *testing.T) {
	s := pipeline.DefaultStages.Clone()
	errNo := errors.New("no keys")
	s.Writers.MustRegister("keyless", pipeline.Impl[pipeline.Writer]{Wire: pipeline.WireV1,
		New: func(pipeline.Env) (pipeline.Writer, error) { return nil, errNo }})
	if _, err := pipeline.New(bytes.NewReader(nil), io.Discard, nil, newTestHandler(), pipeline.Config{Stages: s, Writer: "keyless"}); !errors.Is(err, errNo) {
		t.Errorf("New with a failing constructor = %v, want %v", err, errNo)
	}
}

func TestCatalog(t *testing.T) {
	cat := pipeline.DefaultStages.Catalog()
	var kinds []string
	defaults := map[string]string{}
	for _, k := range cat {
		kinds = append(kinds, k.Kind)
		for _, e := range k.Entries {
			if e.Doc == "" {
				t.Errorf("%s %q has no Doc", k.Kind, e.Name)
			}
			if e.Default {
				if defaults[k.Kind] != "" {
					t.Errorf("%s has two defaults", k.Kind)
				}
				defaults[k.Kind] = e.Name
			}
		}
	}
	if want := []string{"transport", "reader", "framer", "verifier", "dispatcher", "writer"}; !slices.Equal(kinds, want) {
		t.Errorf("Catalog kinds = %v, want %v", kinds, want)
	}
	want := map[string]string{"transport": "v1", "reader": "slab", "framer": "slab", "verifier": "sequential", "dispatcher": "decode", "writer": "coalescing"}
	if !maps.Equal(defaults, want) {
		t.Errorf("Catalog defaults = %v, want %v", defaults, want)
	}
}

func TestLogObserver(t *testing.T) {
	logger, hook := logtest.NewNullLogger()
	logger.SetLevel(logrus.DebugLevel)
	obs := pipeline.NewLogObserver(logrus.NewEntry(logger))
	stream := encode(&wire.Verack{}, &wire.Raw{Cmd: "mystery"})
	stream = append(stream, fakepeer.BadChecksum(magic, &wire.Ping{Nonce: 1, HasNonce: true})...)
	for range 15 {
		stream = append(stream, fakepeer.BadChecksum(magic, &wire.Ping{Nonce: 1, HasNonce: true})...)
	}
	h := newTestHandler(&wire.GetAddr{})
	// The stream ends only once getaddr is queued: otherwise the session
	// may end (at the end of the stream) before Start has sent it.
	p, err := pipeline.New(gateReader{bytes.NewReader(stream), h.sent}, io.Discard, nil, h, pipeline.Config{
		Options: stages.Options{Magic: magic, Observer: obs}, EndAtEOF: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	var dumpsIn, dumpsOut, warnings, unknown int
	for _, e := range hook.AllEntries() {
		switch {
		case e.Level == logrus.WarnLevel && strings.Contains(e.Message, "bad checksum"):
			warnings++
		case e.Level == logrus.DebugLevel && e.Data["dir"] == "in":
			dumpsIn++
			if !strings.Contains(e.Message, "00000000  fa bf b5 da") {
				t.Errorf("debug dump of a frame in lacks the hex of its magic: %q", e.Message)
			}
		case e.Level == logrus.DebugLevel && e.Data["dir"] == "out":
			dumpsOut++
		case e.Level == logrus.DebugLevel && e.Data["command"] == "mystery":
			unknown++
		}
	}
	if dumpsIn != 18 || dumpsOut != 1 || unknown != 1 {
		t.Errorf("debug entries: %d frames in, %d out, %d unknown commands; want 18, 1, 1", dumpsIn, dumpsOut, unknown)
	}
	// 16 bad checksums in well under a second: a burst of 10, the rest
	// suppressed.
	if warnings != 10 {
		t.Errorf("%d checksum warnings logged, want 10 (rate-limited)", warnings)
	}
}

// A transport with a handshake: it reads a 5-byte greeting, and its stages
// are built after it with what it established; the bytes read past the
// greeting are framed first.
func TestTransportHandshake(t *testing.T) {
	s := pipeline.DefaultStages.Clone()
	var sawState any
	s.Framers.MustRegister("greeted", pipeline.Impl[pipeline.Framer]{Wire: "toy",
		New: func(e pipeline.Env) (pipeline.Framer, error) {
			sawState = e.Link.State
			return stages.NewFramer(e.Options), nil
		}})
	s.Verifiers.MustRegister("toy", pipeline.Impl[pipeline.Verifier]{Wire: "toy",
		New: func(e pipeline.Env) (pipeline.Verifier, error) { return stages.NewSequentialVerifier(e.Options), nil }})
	s.Writers.MustRegister("toy", pipeline.Impl[pipeline.Writer]{Wire: "toy",
		New: func(e pipeline.Env) (pipeline.Writer, error) { return stages.NewWriter(e.W, e.Options), nil }})
	errRude := errors.New("no greeting")
	s.Transports.MustRegister("toy", pipeline.Transport{Wire: "toy", Framer: "greeted", Verifier: "toy", Writer: "toy",
		Handshake: func(ctx context.Context, rw io.ReadWriter, e pipeline.Env) (pipeline.Link, error) {
			buf := make([]byte, 64)
			n, err := io.ReadAtLeast(rw, buf, 5)
			if err != nil {
				return pipeline.Link{}, err
			}
			if string(buf[:5]) != "hello" {
				return pipeline.Link{}, errRude
			}
			return pipeline.Link{State: "keys", Leftover: buf[5:n], SessionID: "abcd"}, nil
		}})
	stream := append([]byte("hello"), encode(&wire.Verack{}, &wire.Ping{Nonce: 5, HasNonce: true})...)
	h := newTestHandler()
	p, err := pipeline.New(bytes.NewReader(stream), io.Discard, nil, h, pipeline.Config{
		Options: stages.Options{Magic: magic, Peer: "toy:1"}, Stages: s, Transport: "toy", EndAtEOF: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	if sawState != "keys" {
		t.Errorf("framer built with Link.State %v, want the handshake's", sawState)
	}
	if got, want := h.commands(), []string{"verack", "ping"}; !slices.Equal(got, want) {
		t.Errorf("handler saw %v, want %v (the bytes after the greeting)", got, want)
	}
	if name, link := p.Transport(); name != "toy" || link.SessionID != "abcd" {
		t.Errorf("Transport() = %q, %+v", name, link)
	}

	// A failed handshake ends the pipeline, named as the handshake stage.
	p, err = pipeline.New(bytes.NewReader([]byte("howdy")), io.Discard, nil, newTestHandler(), pipeline.Config{
		Options: stages.Options{Magic: magic, Peer: "toy:2"}, Stages: s, Transport: "toy",
	})
	if err != nil {
		t.Fatal(err)
	}
	err = p.Run(t.Context())
	var se *stages.Error
	if !errors.Is(err, errRude) || !errors.As(err, &se) || se.Stage != pipeline.StageHandshake || se.Peer != "toy:2" {
		t.Errorf("Run with a failing handshake = %v, want a handshake *stages.Error naming toy:2", err)
	}
	// ctx ends a handshake blocked on a silent peer.
	br := newBlockingReader()
	p, err = pipeline.New(br, io.Discard, br, newTestHandler(), pipeline.Config{Stages: s, Transport: "toy"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := p.Run(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run with a silent peer = %v, want the deadline", err)
	}
}

// TestPipelineBudgetReturned: every byte taken from the budgets comes back
// when the pipeline ends, whichever stages ran and however it ended.
func TestPipelineBudgetReturned(t *testing.T) {
	big := &wire.Raw{Cmd: wire.CmdTx, Payload: make([]byte, 300<<10)}
	stream := encode(&wire.Verack{}, big, &wire.Ping{Nonce: 1, HasNonce: true}, big)
	for _, sel := range variants() {
		for _, cut := range []int{len(stream), len(stream) - 100} { // whole, and cut mid-frame
			t.Run(fmt.Sprint(sel.name(), "/", cut), func(t *testing.T) {
				process := stages.NewBudget("process", 64<<20, nil)
				p, err := pipeline.New(bytes.NewReader(stream[:cut]), io.Discard, nil, newTestHandler(), pipeline.Config{
					Options: stages.Options{Magic: magic}, Framer: sel.framer, Verifier: sel.verifier, Writer: sel.writer,
					ConnBudget: 5_000_000, Budget: process, EndAtEOF: true,
				})
				if err != nil {
					t.Fatal(err)
				}
				err = p.Run(t.Context())
				if (cut == len(stream)) != (err == nil) {
					t.Errorf("Run = %v", err)
				}
				if got := process.Used(); got != 0 {
					t.Errorf("the process budget has %d bytes taken after Run", got)
				}
			})
		}
	}
}
