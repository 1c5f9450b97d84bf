package benchmarks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	btcdwire "github.com/btcsuite/btcd/wire/v2"
	"go.uber.org/goleak"

	"github.com/btcpipe/btcpipe/pipeline"
	"github.com/btcpipe/btcpipe/stages"
	"github.com/btcpipe/btcpipe/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// readChunk is the most a Read of the simulated socket returns: about what
// one read of a busy TCP connection gives.
const readChunk = 64 << 10

// btcdProtocol is the protocol version btcd decodes with.
const btcdProtocol = 70016

// socket is an in-memory stream that returns at most max bytes per Read.
type socket struct {
	b   []byte
	max int
}

func (s *socket) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), s.max)], s.b)
	s.b = s.b[n:]
	return n, nil
}

// layout is a corpus as the reader cut it into chunks, kept to be replayed.
type layout struct {
	chunks []stages.Chunk
	// slabs holds one reference to every slab the chunks window, for the
	// life of the process, so they are never reused (and the framer never
	// completes a frame in place in them: it does that only in a slab it
	// holds the sole reference to).
	slabs []*stages.Slab
	// straddles counts the frames that start in one slab and end in
	// another: the framer copies each of those once per pass.
	straddles int
}

// readerOptions are the options of a connection that has already seen the
// corpus's largest frame, so the reader sizes its slabs for it.
func readerOptions(c *corpus) stages.Options {
	hint := new(stages.ReadHint)
	hint.Set(c.maxFrame)
	return stages.Options{Peer: "bench", Magic: c.magic, Hint: hint}
}

// cut reads c through a stages.Reader fed by a socket and returns the
// chunks it sent.
func cut(c *corpus) (*layout, error) {
	rd := stages.NewReader(&socket{b: c.stream, max: readChunk}, readerOptions(c))
	rd.EndAtEOF = true
	ch := make(chan stages.Chunk)
	errc := make(chan error, 1)
	go func() {
		defer close(ch)
		errc <- rd.Run(context.Background(), nil, ch)
	}()
	l := &layout{}
	held := map[*stages.Slab]bool{}
	var starts []int // stream offset of each chunk
	pos := 0
	for ck := range ch {
		if !held[ck.Slab] {
			held[ck.Slab] = true
			ck.Slab.Retain()
			l.slabs = append(l.slabs, ck.Slab)
		}
		ck.Slab.Release() // the chunk's reference; ours keeps the slab
		l.chunks = append(l.chunks, ck)
		starts = append(starts, pos)
		pos += ck.End - ck.Off
	}
	if err := <-errc; err != nil {
		return nil, err
	}
	if pos != len(c.stream) {
		return nil, fmt.Errorf("corpus %s: the reader sent %d bytes of %d", c.name, pos, len(c.stream))
	}
	// chunkAt returns the index of the chunk holding stream offset off.
	chunkAt := func(off int) int {
		lo, hi := 0, len(starts)-1
		for lo < hi {
			mid := (lo + hi + 1) / 2
			if starts[mid] <= off {
				lo = mid
			} else {
				hi = mid - 1
			}
		}
		return lo
	}
	off := 0
	for _, p := range c.payloads {
		end := off + wire.HeaderSize + len(p)
		if l.chunks[chunkAt(off)].Slab != l.chunks[chunkAt(end-1)].Slab {
			l.straddles++
		}
		off = end
	}
	return l, nil
}

var layouts sync.Map // *corpus → func() (*layout, error)

func getLayout(c *corpus) (*layout, error) {
	f, _ := layouts.LoadOrStore(c, sync.OnceValues(func() (*layout, error) { return cut(c) }))
	return f.(func() (*layout, error))()
}

// replay pushes the layout's chunks through fr and hands each batch to
// each, which must release it. It returns the number of frames cut.
func (l *layout) replay(fr framer, each func(*stages.Batch)) (int, error) {
	n := 0
	for _, c := range l.chunks {
		c.Slab.Retain() // the reference the chunk carries
		b, err := fr.Push(c)
		if b != nil {
			n += len(b.Frames)
			each(b)
		}
		if err != nil {
			return n, err
		}
	}
	if fr.Pending() != 0 {
		return n, fmt.Errorf("%d bytes left pending", fr.Pending())
	}
	return n, nil
}

// framer is either of the framers, driven without goroutines.
type framer interface {
	Push(stages.Chunk) (*stages.Batch, error)
	Pending() int
}

// countHandler counts the messages it is handed; Start returns at once.
type countHandler struct{ n int }

func (*countHandler) Start(context.Context, stages.Sender) error { return nil }
func (h *countHandler) Handle(context.Context, wire.Message, stages.Sender) error {
	h.n++
	return nil
}

// impl is one way of getting a corpus's frames.
type impl struct {
	name string
	// setup prepares one benchmark run and returns its passes; what it
	// starts ends in tb's cleanup.
	setup func(tb testing.TB, c *corpus, l *layout) runner
}

// runner runs passes over a corpus. pass feeds the corpus once and returns
// the number of messages handled since the previous call; finish waits for
// the passes still in flight and returns their messages. The one-goroutine
// implementations finish each pass before pass returns (finish is nil);
// the pipeline overlaps consecutive passes, as consecutive reads of a
// connection overlap.
type runner struct {
	pass   func() (int, error)
	finish func() (int, error)
}

// syncRunner is a runner of passes that end before they return.
func syncRunner(pass func() (int, error)) runner { return runner{pass: pass} }

// done returns the messages of the passes still in flight.
func (r runner) done() (int, error) {
	if r.finish == nil {
		return 0, nil
	}
	return r.finish()
}

var impls = []impl{
	{"framer", func(_ testing.TB, c *corpus, l *layout) runner {
		fr := stages.NewFramer(readerOptions(c))
		release := func(b *stages.Batch) { b.Release() }
		return syncRunner(func() (int, error) { return l.replay(fr, release) })
	}},
	{"framer-copy", func(_ testing.TB, c *corpus, l *layout) runner {
		fr := stages.NewCopyFramer(readerOptions(c))
		release := func(b *stages.Batch) { b.Release() }
		return syncRunner(func() (int, error) { return l.replay(fr, release) })
	}},
	{"verifier", func(_ testing.TB, c *corpus, l *layout) runner {
		opts := readerOptions(c).Defaults()
		fr := stages.NewFramer(opts)
		kept := 0
		verify := func(b *stages.Batch) {
			stages.VerifyBatch(b, opts.Observer)
			kept += len(b.Frames)
			b.Release()
		}
		return syncRunner(func() (int, error) {
			kept = 0
			_, err := l.replay(fr, verify)
			return kept, err
		})
	}},
	{"decoder", func(_ testing.TB, c *corpus, l *layout) runner {
		opts := readerOptions(c).Defaults()
		fr := stages.NewFramer(opts)
		h := &countHandler{}
		d := stages.NewDispatcher(h, opts)
		ctx := context.Background()
		var derr error
		dispatch := func(b *stages.Batch) {
			stages.VerifyBatch(b, opts.Observer)
			if err := d.Dispatch(ctx, b, nil); err != nil && derr == nil {
				derr = err
			}
			b.Release()
		}
		return syncRunner(func() (int, error) {
			h.n, derr = 0, nil
			_, err := l.replay(fr, dispatch)
			return h.n, errors.Join(err, derr)
		})
	}},
	{"pipeline-seq", pipelinePass(stages.VerifierSequential)},
	{"pipeline-par", pipelinePass(stages.VerifierParallel)},
	{"btcd", func(_ testing.TB, c *corpus, _ *layout) runner {
		r := bytes.NewReader(nil)
		net := btcdwire.BitcoinNet(c.magic)
		return syncRunner(func() (int, error) {
			r.Reset(c.stream)
			n := 0
			for r.Len() > 0 {
				if _, _, err := btcdwire.ReadMessage(r, btcdProtocol, net); err != nil {
					return n, err
				}
				n++
			}
			return n, nil
		})
	}},
	{"sha256d", func(_ testing.TB, c *corpus, _ *layout) runner {
		var sink byte
		return syncRunner(func() (int, error) {
			for _, p := range c.payloads {
				first := sha256.Sum256(p)
				second := sha256.Sum256(first[:])
				sink ^= second[0]
			}
			_ = sink
			return len(c.payloads), nil
		})
	}},
}

// pipelinePass starts the whole pipeline (reader → framer → verifier →
// dispatcher, and the writer), as btcpipe runs it for a connection, for the
// life of the benchmark. Each pass feeds it the corpus once, as the reads of
// a socket, and returns once the reader has taken it all and the previous
// pass's messages have all been handled: the stream flows on from pass to
// pass without a gap, while at most two passes are in flight. (b.Loop's
// timer stops with the last pass still in flight: the error is at most one
// pass in all.)
func pipelinePass(verifier string) func(tb testing.TB, c *corpus, _ *layout) runner {
	return func(tb testing.TB, c *corpus, _ *layout) runner {
		src := &passSource{start: make(chan []byte), stop: make(chan struct{})}
		h := &passHandler{want: c.frames(), done: make(chan struct{}, 4)}
		opts := readerOptions(c)
		opts.Workers = runtime.GOMAXPROCS(0)
		p, err := pipeline.New(src, io.Discard, nil, h, pipeline.Config{Options: opts, Verifier: verifier, EndAtEOF: true})
		if err != nil {
			tb.Fatal(err)
		}
		var runErr error
		ended := make(chan struct{})
		go func() {
			defer close(ended)
			runErr = p.Run(context.Background())
		}()
		tb.Cleanup(func() {
			close(src.stop) // the reader sees the end of the stream
			<-ended
		})
		runError := func() error {
			if runErr == nil {
				return errors.New("the pipeline ended")
			}
			return runErr
		}
		sent, completed := 0, 0
		timeout := time.NewTimer(time.Hour)
		// await waits until at most inflight passes are in flight and
		// returns the messages of those that completed.
		await := func(inflight int) (int, error) {
			n := 0
			timeout.Reset(time.Minute)
			for sent-completed > inflight {
				select {
				case <-h.done:
					completed++
					n += c.frames()
				case <-ended:
					return n, runError()
				case <-timeout.C:
					return n, fmt.Errorf("pass %d: the handler got %d of %d messages in a minute", completed+1, h.n.Load(), c.frames())
				}
			}
			return n, nil
		}
		return runner{
			pass: func() (int, error) {
				select {
				case src.start <- c.stream:
					sent++
				case <-ended:
					return 0, runError()
				}
				return await(1)
			},
			finish: func() (int, error) { return await(0) },
		}
	}
}

// passSource is the pipeline's socket: each stream sent on start is read
// once, at most readChunk bytes per Read; closing stop ends the stream.
type passSource struct {
	start chan []byte
	stop  chan struct{}
	cur   []byte
}

func (s *passSource) Read(p []byte) (int, error) {
	if len(s.cur) == 0 {
		select {
		case s.cur = <-s.start:
		case <-s.stop:
			return 0, io.EOF
		}
	}
	n := copy(p[:min(len(p), readChunk)], s.cur)
	s.cur = s.cur[n:]
	return n, nil
}

// passHandler counts messages and signals done each time a pass's worth
// has arrived.
type passHandler struct {
	want int
	n    atomic.Int64
	done chan struct{}
}

func (*passHandler) Start(context.Context, stages.Sender) error { return nil }
func (h *passHandler) Handle(context.Context, wire.Message, stages.Sender) error {
	if h.n.Add(1) == int64(h.want) {
		h.n.Store(0)
		h.done <- struct{}{} // never blocks: at most two passes are in flight
	}
	return nil
}

// BenchmarkDecode runs every implementation over every corpus; see the
// package documentation.
func BenchmarkDecode(b *testing.B) {
	for _, d := range corpusDefs {
		b.Run("corpus="+d.name, func(b *testing.B) {
			c, err := getCorpus(d)
			if err != nil {
				b.Fatal(err)
			}
			l, err := getLayout(c)
			if err != nil {
				b.Fatal(err)
			}
			for _, im := range impls {
				b.Run("impl="+im.name, func(b *testing.B) {
					r := im.setup(b, c, l)
					fail := func(n int, err error, want int) {
						b.Helper()
						if err != nil || n != want {
							b.Fatalf("%s over %s: %d messages, %v; want %d", im.name, c.name, n, err, want)
						}
					}
					// One pass before the timer starts (b.Loop starts it),
					// so that pools and the decoder's lists are warm: the
					// allocations counted are those of the steady state.
					n, err := r.pass()
					m, err2 := r.done()
					fail(n+m, errors.Join(err, err2), c.frames())
					b.SetBytes(int64(len(c.stream)))
					b.ReportAllocs()
					passes, got := 0, 0
					cpu := cpuTime()
					for b.Loop() {
						n, err := r.pass()
						if err != nil {
							b.Fatalf("%s over %s: %v", im.name, c.name, err)
						}
						got += n
						passes++
					}
					cpu = cpuTime() - cpu
					n, err = r.done()
					fail(got+n, err, passes*c.frames())
					b.ReportMetric(float64(cpu.Nanoseconds())/float64(passes), "cpu-ns/op")
					b.ReportMetric(float64(c.frames()), "msgs/op")
					b.ReportMetric(float64(c.frames()*passes)/b.Elapsed().Seconds(), "msgs/s")
				})
			}
		})
	}
}
