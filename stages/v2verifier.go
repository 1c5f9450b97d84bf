package stages

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/btcpipe/btcpipe/bip324"
	"github.com/btcpipe/btcpipe/wire"
)

// Decoy flood limits of the v2 verifier: decoys are legitimate (BIP324's
// traffic shaping), but a peer that sends nothing else makes us decrypt for
// nothing. More consecutive decoys than either limit, with no message
// between them, end the connection with ErrDecoyFlood.
const (
	// MaxConsecutiveDecoys is the most decoy packets in a row.
	MaxConsecutiveDecoys = 1024
	// MaxConsecutiveDecoyBytes is the most decoy contents bytes in a row
	// (twice the largest message).
	MaxConsecutiveDecoyBytes = 2 * bip324.MaxContents
)

// ErrDecoyFlood: more consecutive decoy packets than the v2 verifier allows.
var ErrDecoyFlood = errors.New("decoy flood")

// DecoyObserver is implemented by observers that want to count the decoy
// packets the v2 verifier drops (an optional extension of Observer).
type DecoyObserver interface {
	// Decoy is called for every decoy packet, after it authenticated,
	// with the length of its contents.
	Decoy(contents int)
}

// TransportObserver is implemented by observers that count per transport
// (an optional extension of Observer): whoever opens a connection calls
// ForTransport with the connection's transport ("v1", "v2") and uses the
// observer it returns for that connection.
type TransportObserver interface {
	ForTransport(name string) Observer
}

// V2Verifier authenticates and decrypts, in place, the sealed packets the
// V2Framer cuts (Receiver.Open, in packet order, on one goroutine) and turns
// each into a wire.Frame the dispatcher decodes: Command from the packet's
// message type, Payload aliasing the decrypted bytes in the slab. It
// allocates nothing per packet.
//
//   - A bad tag ends the connection (BIP324 allows no dropping of one
//     packet), after the packets before it in the batch are handed on.
//   - Decoys (the ignore bit) are dropped after they authenticate and
//     counted (Decoys, and DecoyObserver); a decoy flood (see
//     MaxConsecutiveDecoys) ends the connection.
//   - An unknown one-byte message type is dropped and reported to
//     Observer.DecodeFailed, as Bitcoin Core drops it; a malformed long
//     type ends the connection.
//   - A payload over wire.MaxPayloadFor of its command ends the connection
//     with wire.ErrPayloadTooLarge, as a v1 header declaring it would.
//
// Observer.FrameIn is called for every message, once its command is known.
type V2Verifier struct {
	Opts Options
	recv *bip324.Receiver
	// decoys counts the decoy packets dropped; run* the current run of
	// consecutive decoys.
	decoys            atomic.Int64
	runCount, runSize int
}

// NewV2Verifier returns a verifier of the packets recv decrypts (a
// handshake's Session.Recv; the framer uses its length half).
func NewV2Verifier(recv *bip324.Receiver, opts Options) *V2Verifier {
	return &V2Verifier{Opts: opts.Defaults(), recv: recv}
}

// Decoys returns the number of decoy packets dropped so far.
func (v *V2Verifier) Decoys() int64 { return v.decoys.Load() }

// Run verifies batches from in until it is closed, ctx ends or a packet
// fails. A batch left with no frames is released here.
func (v *V2Verifier) Run(ctx context.Context, in <-chan *Batch, out chan<- *Batch) error {
	for {
		select {
		case b, ok := <-in:
			if !ok {
				return nil
			}
			err := v.Open(b)
			if len(b.Frames) == 0 {
				b.Release()
			} else if serr := send(ctx, out, b); serr != nil {
				b.Release()
				return serr
			}
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Open does to b what the stage does to each batch, for callers that drive
// the stages without goroutines (benchmarks, tools): it opens every packet
// in place, drops decoys and unknown short ids, and leaves in b the
// messages, in order. On an error b holds the messages before the failing
// packet. It does not allocate.
func (v *V2Verifier) Open(b *Batch) error {
	kept := b.Frames[:0]
	var err error
	for i := range b.Frames {
		f := &b.Frames[i]
		if err = v.open(f); err != nil {
			if errors.Is(err, errDrop) {
				err = nil
				continue
			}
			break
		}
		kept = append(kept, *f)
	}
	clear(b.Frames[len(kept):])
	b.Frames = kept
	return err
}

// errDrop marks a packet dropped without ending the connection.
var errDrop = errors.New("dropped")

// open authenticates and decrypts one sealed packet and makes f the message
// it holds.
func (v *V2Verifier) open(f *wire.Frame) error {
	index := v.recv.Packets()
	contents, ignore, err := v.recv.Open(f.Payload[bip324.LengthSize:], nil)
	if err != nil {
		return v.Opts.errorf(StageVerifier, "", fmt.Errorf("packet %d (%d bytes of contents): %w", index, f.Length, err))
	}
	if ignore {
		v.decoys.Add(1)
		v.runCount++
		v.runSize += len(contents)
		if d, ok := v.Opts.Observer.(DecoyObserver); ok {
			d.Decoy(len(contents))
		}
		if v.runCount > MaxConsecutiveDecoys || v.runSize > MaxConsecutiveDecoyBytes {
			return v.Opts.errorf(StageVerifier, "", fmt.Errorf("%w: %d decoys (%d bytes) in a row, at most %d (%d bytes)",
				ErrDecoyFlood, v.runCount, v.runSize, MaxConsecutiveDecoys, MaxConsecutiveDecoyBytes))
		}
		return errDrop
	}
	v.runCount, v.runSize = 0, 0
	cmd, payload, err := bip324.DecodeContents(contents)
	if err != nil {
		if errors.Is(err, bip324.ErrUnknownShortID) {
			*f = wire.Frame{Header: wire.Header{Magic: v.Opts.Magic, Command: unknownCommand}, Payload: contents[1:]}
			v.Opts.Observer.DecodeFailed(f, fmt.Errorf("packet %d: short id %d: %w", index, contents[0], err))
			return errDrop
		}
		return v.Opts.errorf(StageVerifier, "", fmt.Errorf("packet %d: %w", index, err))
	}
	if limit := wire.MaxPayloadFor(cmd); uint32(len(payload)) > limit {
		return v.Opts.errorf(StageVerifier, cmd, &wire.DecodeError{Command: cmd,
			Err: fmt.Errorf("%w: %d bytes, at most %d", wire.ErrPayloadTooLarge, len(payload), limit)})
	}
	f.Magic = v.Opts.Magic
	f.Command = [wire.CommandSize]byte{}
	copy(f.Command[:], cmd)
	f.Length = uint32(len(payload))
	f.Checksum = [4]byte{}
	f.Payload = payload
	if !v.Opts.Want.Has(&f.Command) {
		// Authenticated (a v2 packet cannot be skipped unread), but not a
		// command the session reads: dropped here, as the v1 framer skips it.
		v.Opts.Observer.Skipped(&f.Header)
		return errDrop
	}
	v.Opts.Observer.FrameIn(f)
	return nil
}

// unknownCommand names, in reports, a message whose short id has no type.
var unknownCommand = [wire.CommandSize]byte{'?', 's', 'h', 'o', 'r', 't', 'i', 'd'}
