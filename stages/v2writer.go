package stages

import (
	"context"
	"encoding/binary"
	"io"

	"github.com/btcpipe/btcpipe/bip324"
	"github.com/btcpipe/btcpipe/wire"
)

// V2Writer encrypts outgoing messages into BIP324 packets with the
// handshake's Sender, into a buffer it owns and reuses, and writes them with
// a deadline (when W supports SetWriteDeadline), coalescing the messages
// queued together into one write of up to 64 KiB, as Writer does. It is the
// Sender's one owner: packets are numbered in the order they are written.
//
// Each payload is encoded into a reused scratch buffer and then sealed into
// the write buffer (the AEAD cannot seal into its own input's spare room),
// so once the buffers are warm a message costs no allocation.
//
// Observer.FrameOut gets the message in the v1 layout every observer reads
// (a 24-byte header of magic, command and length, with a zero checksum,
// then the payload), not the ciphertext: the scratch buffer keeps room for
// that header, so it costs no copy and no hash.
type V2Writer struct {
	W    io.Writer
	Opts Options
	send *bip324.Sender
	buf  []byte
	// payload is the scratch buffer payloads are encoded into.
	payload []byte
	gather  int
}

// NewV2Writer returns a coalescing v2 writer to w, encrypting with send (a
// handshake's Session.Send).
func NewV2Writer(w io.Writer, send *bip324.Sender, opts Options) *V2Writer {
	return &V2Writer{W: w, Opts: opts.Defaults(), send: send, gather: maxCoalesce}
}

// Run writes messages from in until it is closed or ctx ends. out is unused
// (the writer is a sink).
func (w *V2Writer) Run(ctx context.Context, in <-chan wire.Message, _ chan<- struct{}) error {
	return runWriter(ctx, in, w.W, w.Opts, w.gather, &w.buf, w.encode)
}

// Encode appends m to dst as one encrypted packet (for callers that drive
// the stages without goroutines, such as benchmarks and fake peers).
func (w *V2Writer) Encode(dst []byte, m wire.Message) ([]byte, error) { return w.encode(dst, m) }

func (w *V2Writer) encode(dst []byte, m wire.Message) ([]byte, error) {
	var hdr [wire.HeaderSize]byte
	w.payload = m.AppendPayload(append(w.payload[:0], hdr[:]...))
	cmd := m.Command()
	start := len(dst)
	dst, err := w.send.AppendMessage(dst, cmd, w.payload[wire.HeaderSize:])
	if err != nil {
		return dst[:start], err
	}
	plain := w.payload
	binary.LittleEndian.PutUint32(plain[0:4], uint32(w.Opts.Magic))
	copy(plain[4:16], cmd)
	binary.LittleEndian.PutUint32(plain[16:20], uint32(len(plain)-wire.HeaderSize))
	w.Opts.Observer.FrameOut(cmd, plain)
	return dst, nil
}
