package stages_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"testing/iotest"
	"time"

	"github.com/btcpipe/btcpipe/stages"
)

// readAll runs a reader over r and returns the bytes of the chunks it sent
// (released as they come) and its error. It checks that every slab's
// references are returned.
func readAll(t *testing.T, rd *stages.Reader) ([]byte, int, error) {
	t.Helper()
	out := make(chan stages.Chunk)
	errc := make(chan error, 1)
	go func() {
		err := rd.Run(t.Context(), nil, out)
		close(out)
		errc <- err
	}()
	var (
		got     []byte
		chunks  int
		tracker slabTracker
	)
	for c := range out {
		tracker.add(c.Slab)
		got = append(got, c.Bytes()...)
		chunks++
		c.Slab.Release()
	}
	err := <-errc
	if chunks > 0 {
		tracker.check(t)
	}
	return got, chunks, err
}

func TestReader(t *testing.T) {
	stream := bytes.Repeat(handshakeStream(), 300) // ~220 KB: several slabs
	tests := []struct {
		name       string
		r          io.Reader
		endAtEOF   bool
		wantErr    error // wrapped in a reader *stages.Error
		wantChunks int   // 0: any
	}{
		{name: "EndAtEOF", r: bytes.NewReader(stream), endAtEOF: true},
		{name: "EOF is an error on a connection", r: bytes.NewReader(stream), wantErr: io.EOF},
		{name: "one byte per read", r: iotest.OneByteReader(bytes.NewReader(stream[:5000])), endAtEOF: true, wantChunks: 5000},
		{name: "data with the error", r: iotest.DataErrReader(bytes.NewReader(stream)), endAtEOF: true},
		{name: "read error", r: io.MultiReader(bytes.NewReader(stream), iotest.ErrReader(io.ErrClosedPipe)), wantErr: io.ErrClosedPipe},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tee bytes.Buffer
			rd := stages.NewReader(tt.r, stages.Options{Peer: "peer:5"})
			rd.EndAtEOF, rd.Tee = tt.endAtEOF, &tee
			got, chunks, err := readAll(t, rd)
			want := stream
			if tt.wantChunks == 5000 {
				want = stream[:5000]
			}
			if !bytes.Equal(got, want) {
				t.Errorf("chunks hold %d bytes differing from the %d read", len(got), len(want))
			}
			if !bytes.Equal(tee.Bytes(), want) {
				t.Errorf("Tee got %d bytes differing from the %d read", tee.Len(), len(want))
			}
			if tt.wantChunks != 0 && chunks != tt.wantChunks {
				t.Errorf("%d chunks, want %d", chunks, tt.wantChunks)
			}
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Run = %v, want nil", err)
				}
				return
			}
			var se *stages.Error
			if !errors.As(err, &se) || se.Stage != stages.StageReader || se.Peer != "peer:5" || !errors.Is(err, tt.wantErr) {
				t.Fatalf("Run = %v, want a reader *stages.Error naming peer:5 wrapping %v", err, tt.wantErr)
			}
		})
	}
}

func TestReaderTeeError(t *testing.T) {
	errTee := errors.New("disk full")
	rd := stages.NewReader(bytes.NewReader(handshakeStream()), stages.Options{})
	rd.Tee = &writeRecorder{err: errTee}
	_, chunks, err := readAll(t, rd)
	var se *stages.Error
	if !errors.As(err, &se) || se.Stage != stages.StageReader || !errors.Is(err, errTee) {
		t.Fatalf("Run = %v, want a reader *stages.Error wrapping %v", err, errTee)
	}
	if chunks != 0 {
		t.Errorf("%d chunks sent, want none once the record failed", chunks)
	}
}

// TestReaderSlabsFollowHint: once the framer announces a large frame, the
// reader's next slab is large enough to hold it whole.
func TestReaderSlabsFollowHint(t *testing.T) {
	hint := new(stages.ReadHint)
	hint.Set(300 << 10)
	rd := stages.NewReader(bytes.NewReader(make([]byte, 100)), stages.Options{Hint: hint})
	rd.EndAtEOF = true
	out := make(chan stages.Chunk, 1)
	if err := rd.Run(t.Context(), nil, out); err != nil {
		t.Fatal(err)
	}
	c := <-out
	defer c.Slab.Release()
	if got, want := len(c.Slab.B), 8*(300<<10); got < want {
		t.Errorf("slab of %d bytes after a hint of 300 KiB, want at least %d", got, want)
	}
}

func TestReaderStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	out := make(chan stages.Chunk) // nobody reads
	errc := make(chan error, 1)
	rd := stages.NewReader(bytes.NewReader(handshakeStream()), stages.Options{})
	go func() { errc <- rd.Run(ctx, nil, out) }()
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
