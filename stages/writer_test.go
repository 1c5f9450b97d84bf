package stages_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/btcpipe/btcpipe/stages"
	"github.com/btcpipe/btcpipe/wire"
)

// writeRecorder records each Write call, and fails them with err.
type writeRecorder struct {
	writes [][]byte
	err    error
}

func (w *writeRecorder) Write(b []byte) (int, error) {
	w.writes = append(w.writes, bytes.Clone(b))
	if w.err != nil {
		return 0, w.err
	}
	return len(b), nil
}

// queued returns a closed channel holding ms.
func queued(ms ...wire.Message) chan wire.Message {
	c := make(chan wire.Message, len(ms))
	for _, m := range ms {
		c <- m
	}
	close(c)
	return c
}

// TestWriterCoalesces: the coalescing writer gathers what is queued into
// writes of up to 64 KiB; the direct writer writes each message alone.
// Both write the same bytes.
func TestWriterCoalesces(t *testing.T) {
	big := func(b byte) wire.Message { return &wire.Raw{Cmd: wire.CmdTx, Payload: bytes.Repeat([]byte{b}, 40<<10)} }
	handshake := []wire.Message{&wire.WTxIDRelay{}, &wire.SendAddrV2{}, &wire.Verack{}, &wire.GetAddr{}, &wire.Ping{Nonce: 1, HasNonce: true}}
	type newWriter func(w io.Writer, opts stages.Options) *stages.Writer
	tests := []struct {
		name       string
		writer     newWriter
		msgs       []wire.Message
		wantWrites int
	}{
		{name: "handshake replies", writer: stages.NewWriter, msgs: handshake, wantWrites: 1},
		{name: "one message", writer: stages.NewWriter, msgs: []wire.Message{&wire.Verack{}}, wantWrites: 1},
		// 40 KiB + 40 KiB passes 64 KiB: the third goes in a second write.
		{name: "over 64 KiB", writer: stages.NewWriter, msgs: []wire.Message{big(1), big(2), big(3)}, wantWrites: 2},
		{name: "direct handshake replies", writer: stages.NewDirectWriter, msgs: handshake, wantWrites: len(handshake)},
		{name: "direct large", writer: stages.NewDirectWriter, msgs: []wire.Message{big(1), big(2), big(3)}, wantWrites: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := new(writeRecorder)
			obs := new(recorder)
			if err := tt.writer(w, stages.Options{Magic: magic, Observer: obs}).Run(t.Context(), queued(tt.msgs...), nil); err != nil {
				t.Fatalf("Run = %v, want nil when in is closed", err)
			}
			if got := len(w.writes); got != tt.wantWrites {
				t.Errorf("%d writes, want %d", got, tt.wantWrites)
			}
			want := encode(tt.msgs...)
			if got := bytes.Join(w.writes, nil); !bytes.Equal(got, want) {
				t.Errorf("bytes written differ from the messages' frames:\n got %x\nwant %x", got, want)
			}
			var frames [][]byte
			for _, m := range tt.msgs {
				frames = append(frames, wire.AppendMessage(nil, magic, m))
			}
			if !slices.EqualFunc(obs.framesOut, frames, bytes.Equal) {
				t.Errorf("Observer.FrameOut saw %d frames, want the %d frames written", len(obs.framesOut), len(frames))
			}
		})
	}
}

func TestWriterErrors(t *testing.T) {
	errDisk := errors.New("broken pipe, say")
	w := &writeRecorder{err: errDisk}
	err := stages.NewWriter(w, stages.Options{Peer: "peer:3", Magic: magic}).
		Run(t.Context(), queued(&wire.Verack{}, &wire.GetAddr{}), nil)
	var se *stages.Error
	if !errors.As(err, &se) || se.Stage != stages.StageWriter || se.Peer != "peer:3" || se.Command != wire.CmdGetAddr {
		t.Fatalf("Run = %#v, want *stages.Error from the writer naming peer:3 and the last command (getaddr)", err)
	}
	if !errors.Is(err, errDisk) {
		t.Errorf("Run = %v, want it to wrap %v", err, errDisk)
	}

	// With ctx ended, a failed write reports ctx's error.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := stages.NewWriter(w, stages.Options{Magic: magic}).Run(ctx, queued(&wire.Verack{}), nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Run with ctx cancelled = %v, want context.Canceled", err)
	}
}

// TestWriterDeadline: a peer that does not read makes the write time out.
func TestWriterDeadline(t *testing.T) {
	ours, theirs := net.Pipe() // synchronous: a write blocks until read
	defer ours.Close()
	defer theirs.Close()
	start := time.Now()
	err := stages.NewWriter(ours, stages.Options{Peer: "peer:4", Magic: magic, WriteTimeout: 50 * time.Millisecond}).
		Run(t.Context(), queued(&wire.Ping{Nonce: 1, HasNonce: true}), nil)
	var se *stages.Error
	if !errors.As(err, &se) || se.Stage != stages.StageWriter || se.Command != wire.CmdPing {
		t.Fatalf("Run = %v, want *stages.Error from the writer naming ping", err)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Run = %v, want it to wrap os.ErrDeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the write timed out after %s, want about 50ms", d)
	}
}

func TestWriterStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		errc <- stages.NewWriter(new(writeRecorder), stages.Options{Magic: magic}).Run(ctx, make(chan wire.Message), nil)
	}()
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v, want context.Canceled", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return 2s after ctx was cancelled")
	}
}

// TestWriterRefusesWhatTheWireWouldReject: a message no peer would accept
// (a command over 12 bytes, a ping over its 8 bytes) ends the writer with an
// error naming the stage and the command, and nothing of it is written.
func TestWriterRefusesWhatTheWireWouldReject(t *testing.T) {
	for _, m := range []wire.Message{
		&wire.Raw{Cmd: "thirteenbytes", Payload: nil},
		&wire.Raw{Cmd: wire.CmdPing, Payload: make([]byte, 9)},
	} {
		w := new(writeRecorder)
		err := stages.NewWriter(w, stages.Options{Peer: "peer:5", Magic: magic}).Run(t.Context(), queued(&wire.Verack{}, m), nil)
		var se *stages.Error
		if !errors.As(err, &se) || se.Stage != stages.StageWriter || se.Command != m.Command() || se.Peer != "peer:5" {
			t.Errorf("Run with %s = %v, want a writer *stages.Error naming it", m.Command(), err)
		}
		if len(w.writes) != 0 {
			t.Errorf("%d writes: the batch with the bad message was written", len(w.writes))
		}
	}
}
