package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/btcpipe/btcpipe/pipeline"
	"github.com/btcpipe/btcpipe/stages"
	"github.com/btcpipe/btcpipe/wire"
)

func init() {
	register(&command{
		name:    "decode",
		args:    "FILE|-",
		summary: "decode a recorded inbound stream (BTCPIPE_RECORD) through the framer, verifier and dispatcher; print counts and throughput",
		run:     runDecode,
	})
}

// stdin is what "btcpipe decode -" reads; tests replace it.
var stdin io.Reader = os.Stdin

// runDecode runs the framer, verifier and dispatcher stages over a recorded
// byte stream: the node's pipeline (pipeline.New, the verifier named by
// BTCPIPE_VERIFIER, the magic of BTCPIPE_NETWORK) with the connection
// swapped for the file and the protocol logic for a handler that counts.
//
// It exits 0 when every byte formed a frame that passed its checksum and
// decoded; otherwise it still prints the counts up to the damage, then says
// what went wrong and exits 1: a stream cut mid-frame, a header that can
// never be valid (wrong magic, bad command, oversize length), frames with a
// bad checksum (dropped and counted, as the node drops them) or payloads
// that do not decode (counted; in decode none of them is fatal).
func runDecode(ctx context.Context, e *env, args []string) int {
	if len(args) != 1 {
		fmt.Fprintf(e.stderr, "btcpipe: decode takes one argument: a file recorded with BTCPIPE_RECORD, or - for stdin\n")
		return exitUsage
	}
	name := args[0]
	var in io.Reader
	if name == "-" {
		in, name = stdin, "stdin"
	} else {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintf(e.stderr, "btcpipe: decode: %v\n", err)
			return exitFailed
		}
		defer f.Close()
		in = f
	}
	network, _ := wire.NetworkByName(e.cfg.Network) // validated

	tally := newDecodeTally()
	cr := &countingReader{r: in}
	opts := stagesOptions(&e.cfg)
	opts.Peer = name
	opts.Magic = network.Magic
	opts.Observer = tally
	opts.FatalDecode = func(string) bool { return false } // count them all
	// A damaged stream ends the pipeline with the framer's error, after
	// the frames cut before the damage have been verified and dispatched:
	// the counts go up to the damage.
	p, err := pipeline.New(cr, io.Discard, nil, tally, pipeline.Config{
		Options:    opts,
		QueueDepth: e.cfg.QueueDepth,
		Framer:     e.cfg.Framer,
		Verifier:   e.cfg.Verifier,
		EndAtEOF:   true,
	})
	if err != nil {
		fmt.Fprintf(e.stderr, "btcpipe: decode: %v\n", err)
		return exitFailed
	}
	begin := time.Now()
	runErr := p.Run(ctx)
	elapsed := time.Since(begin)

	fmt.Fprintf(e.stdout, "%s: %s stream (magic %s), verifier %s\n", name, network.Name, network.Magic, orDefault(e.cfg.Verifier, pipeline.VerifierSequential))
	sum := tally.write(e.stdout)
	secs := max(elapsed.Seconds(), 1e-9)
	fmt.Fprintf(e.stdout, "read %d bytes in %v: %.1f MB/s, %.0f msgs/s\n",
		cr.n, elapsed.Round(time.Microsecond), float64(cr.n)/secs/1e6, float64(sum.frames)/secs)

	var problems []string
	if runErr != nil {
		problems = append(problems, describeDecodeError(runErr, cr.n, sum.bytes))
	}
	if sum.checksum > 0 {
		problems = append(problems, fmt.Sprintf("%d frame(s) failed their checksum and were dropped", sum.checksum))
	}
	if sum.decodeFail > 0 {
		problems = append(problems, fmt.Sprintf("%d payload(s) did not decode", sum.decodeFail))
	}
	for _, p := range problems {
		fmt.Fprintf(e.stderr, "btcpipe: decode: %s\n", p)
	}
	if len(problems) > 0 {
		return exitFailed
	}
	return exitOK
}

// describeDecodeError explains why the stream stopped, and where.
func describeDecodeError(err error, read, framed int64) string {
	var msg string
	switch {
	case errors.Is(err, stages.ErrStreamEnded):
		msg = "the stream is truncated"
	case errors.Is(err, wire.ErrBadMagic):
		msg = "the stream is corrupt or from another network (see BTCPIPE_NETWORK)"
	case errors.Is(err, context.Canceled):
		msg = "interrupted"
	default:
		msg = "the stream is corrupt"
	}
	return fmt.Sprintf("%s: %v (after %d bytes of whole frames, %d bytes read)", msg, err, framed, read)
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// commandTally is what decode counts for one command.
type commandTally struct {
	frames     int64 // frames cut by the framer
	bytes      int64 // their size, headers included
	checksum   int64 // dropped by the verifier
	decoded    int64 // handed to the handler
	decodeFail int64 // payloads that did not decode
}

func (t *commandTally) add(o *commandTally) {
	t.frames += o.frames
	t.bytes += o.bytes
	t.checksum += o.checksum
	t.decoded += o.decoded
	t.decodeFail += o.decodeFail
}

// decodeTally is both the stages.Observer and the stages.Handler of decode.
// The stages call it from several goroutines (the framer, the verifier's
// workers, the dispatcher), so it counts under a mutex; it is read only
// after the pipeline has returned.
type decodeTally struct {
	mu   sync.Mutex
	cmds map[string]*commandTally
}

func newDecodeTally() *decodeTally { return &decodeTally{cmds: map[string]*commandTally{}} }

func (t *decodeTally) get(cmd string) *commandTally {
	c := t.cmds[cmd]
	if c == nil {
		c = new(commandTally)
		t.cmds[cmd] = c
	}
	return c
}

func (t *decodeTally) FrameIn(f *wire.Frame) {
	t.mu.Lock()
	c := t.get(f.CommandName())
	c.frames++
	c.bytes += int64(wire.HeaderSize + len(f.Payload))
	t.mu.Unlock()
}

func (t *decodeTally) ChecksumFailed(f *wire.Frame) {
	t.mu.Lock()
	t.get(f.CommandName()).checksum++
	t.mu.Unlock()
}

func (t *decodeTally) DecodeFailed(f *wire.Frame, _ error) {
	t.mu.Lock()
	t.get(f.CommandName()).decodeFail++
	t.mu.Unlock()
}

func (*decodeTally) Decoded(wire.Message)    {}
func (*decodeTally) FrameOut(string, []byte) {}

// Start returns at once: decode sends nothing.
func (*decodeTally) Start(context.Context, stages.Sender) error { return nil }

// Handle counts the message.
func (t *decodeTally) Handle(_ context.Context, m wire.Message, _ stages.Sender) error {
	t.mu.Lock()
	t.get(m.Command()).decoded++
	t.mu.Unlock()
	return nil
}

// write prints one row per command, most frames first, and a total row; it
// returns the totals.
func (t *decodeTally) write(w io.Writer) commandTally {
	t.mu.Lock()
	defer t.mu.Unlock()
	names := make([]string, 0, len(t.cmds))
	for name := range t.cmds {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := t.cmds[names[i]], t.cmds[names[j]]
		if a.frames != b.frames {
			return a.frames > b.frames
		}
		return names[i] < names[j]
	})
	var sum commandTally
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "command\tframes\tbytes\tdecoded\tbad checksum\tbad payload\t")
	for _, name := range names {
		c := t.cmds[name]
		sum.add(c)
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t\n", name, c.frames, c.bytes, c.decoded, c.checksum, c.decodeFail)
	}
	fmt.Fprintf(tw, "total\t%d\t%d\t%d\t%d\t%d\t\n", sum.frames, sum.bytes, sum.decoded, sum.checksum, sum.decodeFail)
	tw.Flush()
	return sum
}
