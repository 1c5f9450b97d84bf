package stages_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/btcpipe/btcpipe/pipeline"
	"github.com/btcpipe/btcpipe/stages"
	"github.com/btcpipe/btcpipe/wire"
)

// batchOf frames stream into one batch the way the framer does, aliasing
// a slab the batch alone holds. It fails the test on a framing error.
func batchOf(t *testing.T, stream []byte) (*stages.Batch, *stages.Slab) {
	t.Helper()
	s := stages.NewSlab(len(stream))
	n := copy(s.B, stream)
	f := stages.NewFramer(stages.Options{Magic: magic})
	b, err := f.Push(stages.Chunk{Slab: s, End: n})
	if err != nil || b == nil || f.Pending() != 0 {
		t.Fatalf("framing the test stream: batch %v, error %v, %d bytes pending", b, err, f.Pending())
	}
	return b, s
}

// handled is a message as a handler saw it, copied.
type handled struct {
	cmd     string
	payload []byte // a *wire.Raw's payload
}

// recordingHandler records what it handles, answers pings with pongs and
// returns failOn's error for the command failOn names.
type recordingHandler struct {
	got    []handled
	failOn string
	err    error
}

func (h *recordingHandler) Start(ctx context.Context, send stages.Sender) error {
	<-ctx.Done()
	return ctx.Err()
}

func (h *recordingHandler) Handle(ctx context.Context, m wire.Message, send stages.Sender) error {
	r := handled{cmd: m.Command()}
	if raw, ok := m.(*wire.Raw); ok {
		r.payload = bytes.Clone(raw.Payload)
	}
	h.got = append(h.got, r)
	if m.Command() == h.failOn {
		return h.err
	}
	if p, ok := m.(*wire.Ping); ok {
		return send(ctx, &wire.Pong{Nonce: p.Nonce})
	}
	return nil
}

func (h *recordingHandler) commands() []string {
	out := make([]string, len(h.got))
	for i, g := range h.got {
		out[i] = g.cmd
	}
	return out
}

func noSend(context.Context, wire.Message) error { return errors.New("unexpected send") }

func TestDispatcherHandlesEveryMessageInOrder(t *testing.T) {
	msgs := handshakeMessages()
	b, slab := batchOf(t, handshakeStream())
	counters := new(pipeline.Counters)
	obs := new(recorder)
	h := new(recordingHandler)
	d := stages.NewDispatcher(h, stages.Options{Magic: magic, Observer: pipeline.Observers{counters, obs}})
	var sent []wire.Message
	send := func(_ context.Context, m wire.Message) error { sent = append(sent, m); return nil }
	if err := d.Dispatch(t.Context(), b, send); err != nil {
		t.Fatalf("Dispatch: %v", err)
	}
	b.Release()
	if got := slab.Refs(); got != 0 {
		t.Errorf("slab has %d references after the batch's release, want 0", got)
	}
	if got, want := h.commands(), commandsOf(msgs); !slices.Equal(got, want) {
		t.Errorf("handler saw %v, want %v", got, want)
	}
	if got, want := obs.decoded, commandsOf(msgs); !slices.Equal(got, want) {
		t.Errorf("Observer.Decoded saw %v, want %v", got, want)
	}
	last := h.got[len(h.got)-1]
	if last.cmd != "unknowncmd" || string(last.payload) != "whatever this is" {
		t.Errorf("unknown command reached the handler as %q %q, want a *wire.Raw %q %q", last.cmd, last.payload, "unknowncmd", "whatever this is")
	}
	if got := counters.Unknown.Load(); got != 1 {
		t.Errorf("Counters.Unknown = %d, want 1", got)
	}
	if got := counters.DecodeFailures.Load(); got != 0 {
		t.Errorf("Counters.DecodeFailures = %d, want 0", got)
	}
	if len(sent) != 1 || sent[0].(*wire.Pong).Nonce != 0xdeadbeef {
		t.Errorf("handler sent %v, want one pong 0xdeadbeef", sent)
	}
}

func TestDispatcherMalformedPayloads(t *testing.T) {
	frame := func(cmd string, payload []byte) []byte { return wire.AppendFrame(nil, magic, cmd, payload) }
	ping := encode(&wire.Ping{Nonce: 1, HasNonce: true})
	tests := []struct {
		name        string
		stream      []byte
		fatalDecode func(string, error) bool // nil: the default (version, verack, lists over their limit)
		wantCmds    []string                 // what the handler sees
		wantErr     error                    // nil: the connection stays up
		wantCmd     string
	}{
		{name: "addr count larger than its entries", stream: append(frame("addr", []byte{2, 1, 2, 3}), ping...),
			wantCmds: []string{"ping"}},
		{name: "addr with trailing bytes", stream: append(frame("addr", append(encode(&wire.Addr{})[24:], 0)), ping...),
			wantCmds: []string{"ping"}},
		// Over the entry limit: Bitcoin Core disconnects, and so do we.
		{name: "addrv2 over the entry limit", stream: append(frame("addrv2", []byte{0xfd, 0xe9, 0x03}), ping...),
			wantErr: wire.ErrTooManyEntries, wantCmd: "addrv2"},
		{name: "over the limit, not fatal when the caller says so", stream: append(frame("addrv2", []byte{0xfd, 0xe9, 0x03}), ping...),
			fatalDecode: func(string, error) bool { return false }, wantCmds: []string{"ping"}},
		{name: "ping of 3 bytes", stream: append(frame("ping", []byte{1, 2, 3}), ping...),
			wantCmds: []string{"ping"}},
		{name: "truncated version", stream: append(frame("version", []byte{0x80, 0x11, 0x01, 0x00, 1, 2}), ping...),
			wantErr: wire.ErrTruncated, wantCmd: "version"},
		// (A verack with a payload never gets here: the header is refused.)
		{name: "version with trailing bytes", stream: append(frame("version", append((&wire.Version{Protocol: 70016, UserAgent: "/x/"}).AppendPayload(nil), 0xff)), ping...),
			wantErr: wire.ErrTrailingBytes, wantCmd: "version"},
		{name: "every decode fatal", stream: append(frame("addr", []byte{2}), ping...),
			fatalDecode: func(string, error) bool { return true }, wantErr: wire.ErrTruncated, wantCmd: "addr"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, slab := batchOf(t, tt.stream)
			defer func() {
				b.Release()
				if got := slab.Refs(); got != 0 {
					t.Errorf("slab has %d references after the batch's release, want 0", got)
				}
			}()
			counters := new(pipeline.Counters)
			obs := new(recorder)
			h := new(recordingHandler)
			d := stages.NewDispatcher(h, stages.Options{Peer: "peer:1", Magic: magic,
				Observer: pipeline.Observers{counters, obs}, FatalDecode: tt.fatalDecode})
			err := d.Dispatch(t.Context(), b, func(context.Context, wire.Message) error { return nil })
			if got := counters.DecodeFailures.Load(); got != 1 || len(obs.decodeFailed) != 1 {
				t.Errorf("decode failures reported: %d (counters), %v (observer); want 1", got, obs.decodeFailed)
			}
			if !slices.Equal(h.commands(), tt.wantCmds) {
				t.Errorf("handler saw %v, want %v", h.commands(), tt.wantCmds)
			}
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Dispatch = %v, want nil: a malformed %s is dropped", err, tt.name)
				}
				return
			}
			var se *stages.Error
			if !errors.As(err, &se) || se.Stage != stages.StageDispatcher || se.Command != tt.wantCmd || se.Peer != "peer:1" {
				t.Fatalf("Dispatch = %#v, want *stages.Error from the dispatcher naming peer:1 and %q", err, tt.wantCmd)
			}
			if !errors.Is(err, tt.wantErr) || !errors.Is(obs.decodeFailed[0], tt.wantErr) {
				t.Errorf("Dispatch = %v, reported %v; want both to wrap %v", err, obs.decodeFailed[0], tt.wantErr)
			}
		})
	}
}

func TestDispatcherHandlerError(t *testing.T) {
	errBoom := errors.New("boom")
	b, _ := batchOf(t, encode(&wire.Verack{}, &wire.GetAddr{}, &wire.Ping{Nonce: 1, HasNonce: true}))
	defer b.Release()
	h := &recordingHandler{failOn: wire.CmdGetAddr, err: errBoom}
	d := stages.NewDispatcher(h, stages.Options{Peer: "peer:2", Magic: magic})
	err := d.Dispatch(t.Context(), b, noSend)
	var se *stages.Error
	if !errors.As(err, &se) || se.Stage != stages.StageDispatcher || se.Command != wire.CmdGetAddr || !errors.Is(err, errBoom) {
		t.Fatalf("Dispatch = %v, want a dispatcher *stages.Error for getaddr wrapping %v", err, errBoom)
	}
	if got, want := h.commands(), []string{"verack", "getaddr"}; !slices.Equal(got, want) {
		t.Errorf("handler saw %v, want %v (nothing after the failure)", got, want)
	}

	// A handler failing because ctx ended reports ctx's error, unwrapped.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	b2, _ := batchOf(t, encode(&wire.GetAddr{}))
	defer b2.Release()
	h2 := &recordingHandler{failOn: wire.CmdGetAddr, err: context.Canceled}
	if err := stages.NewDispatcher(h2, stages.Options{Magic: magic}).Dispatch(ctx, b2, noSend); err != context.Canceled {
		t.Errorf("Dispatch with ctx cancelled = %v, want context.Canceled", err)
	}
}

func TestDispatcherRun(t *testing.T) {
	in := make(chan *stages.Batch, 2)
	b1, s1 := batchOf(t, encode(&wire.Verack{}, &wire.Ping{Nonce: 7, HasNonce: true}))
	b2, s2 := batchOf(t, encode(&wire.Ping{Nonce: 8, HasNonce: true}))
	in <- b1
	in <- b2
	close(in)
	out := make(chan wire.Message, 4)
	h := new(recordingHandler)
	if err := stages.NewDispatcher(h, stages.Options{Magic: magic}).Run(t.Context(), in, out); err != nil {
		t.Fatalf("Run = %v, want nil when in is closed", err)
	}
	close(out)
	var nonces []uint64
	for m := range out {
		nonces = append(nonces, m.(*wire.Pong).Nonce)
	}
	if !slices.Equal(nonces, []uint64{7, 8}) {
		t.Errorf("replies: pongs %v, want [7 8]", nonces)
	}
	for i, s := range []*stages.Slab{s1, s2} {
		if got := s.Refs(); got != 0 {
			t.Errorf("batch %d: slab has %d references after Run, want 0 (Run releases batches)", i, got)
		}
	}

	// A reply that cannot be queued waits until ctx ends.
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	in = make(chan *stages.Batch, 1)
	b3, s3 := batchOf(t, encode(&wire.Ping{Nonce: 9, HasNonce: true}))
	in <- b3
	err := stages.NewDispatcher(new(recordingHandler), stages.Options{Magic: magic}).Run(ctx, in, make(chan wire.Message))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run with a full outbound queue = %v, want context.DeadlineExceeded", err)
	}
	if got := s3.Refs(); got != 0 {
		t.Errorf("slab has %d references after Run, want 0", got)
	}
}
