package stages

import (
	"context"
	"fmt"

	"github.com/btcpipe/btcpipe/bip324"
)

// V2Framer cuts BIP324 packets from the chunks the reader sends, the v2
// counterpart of Framer: each packet's 3-byte length is decrypted once
// (Receiver.DecryptLength, which refuses a length over the receive limit
// before anything is read or allocated for the packet), and the packet is
// cut in place in the reader's slab. A packet that straddles two slabs is
// copied once into an assembly slab of exactly its size, as Framer does.
//
// The frames it hands on are sealed: Frame.Payload is the whole packet
// (length, sealed header and contents, tag) and Frame.Length the contents
// length; Command is zero. The v2 verifier opens them in place and fills in
// the command and the payload. The framer uses only the length half of the
// Receiver; the verifier uses the contents half.
type V2Framer struct {
	Opts Options
	recv *bip324.Receiver
	// pending is the unconsumed tail; size is the size of the packet that
	// starts it once its length is decrypted, 0 before.
	pending tail
	size    int
}

// NewV2Framer returns a framer of the packets recv decrypts (a handshake's
// Session.Recv).
func NewV2Framer(recv *bip324.Receiver, opts Options) *V2Framer {
	return &V2Framer{Opts: opts.Defaults(), recv: recv}
}

// Run frames chunks from in until in is closed or ctx ends.
func (f *V2Framer) Run(ctx context.Context, in <-chan Chunk, out chan<- *Batch) error {
	return runFramer(ctx, in, out, f, f.Opts)
}

// Pending returns the number of bytes held for an incomplete packet.
// skipping is 0: a v2 packet's command is encrypted, so the framer cannot
// skip unwanted ones unread; the verifier drops them once it has opened
// them (see V2Verifier).
func (f *V2Framer) skipping() int { return 0 }

func (f *V2Framer) Pending() int { return f.pending.len() }

// pendingCommand is unknown for an encrypted packet.
func (f *V2Framer) pendingCommand() string { return "" }

func (f *V2Framer) pendingBytes() []byte { return f.pending.bytes() }

// Reset drops the pending bytes. The length of a packet already decrypted
// is kept: the Receiver has moved past it.
func (f *V2Framer) Reset() { f.pending.reset() }

// Push takes over c (and its slab reference) and returns the packets it
// completes, or nil if it completes none. The caller owns the batch. With an
// error (a length over the limit) it returns the packets completed before it.
func (f *V2Framer) Push(c Chunk) (*Batch, error) {
	var b *Batch
	for !f.pending.extend(c) {
		var err error
		if c, b, err = f.assemble(c, b); err != nil {
			if c.Slab != nil {
				c.Slab.Release()
			}
			return b, err
		}
		if c.Slab == nil {
			return b, nil
		}
	}
	return f.scan(b)
}

// length decrypts the length of the packet that starts hdr (LengthSize
// bytes at least) and records its size.
func (f *V2Framer) length(hdr []byte) error {
	index := f.recv.Lengths() // the handshake's packets count: the version packet is 0
	n, err := f.recv.DecryptLength(hdr)
	if err != nil {
		return f.Opts.errorf(StageFramer, "", fmt.Errorf("packet %d: %w", index, err))
	}
	f.size = bip324.PacketLen(n)
	f.Opts.Hint.Set(f.size)
	return nil
}

// scan cuts every complete packet from the pending bytes into b.
func (f *V2Framer) scan(b *Batch) (*Batch, error) {
	slab := f.pending.slab
	buf := slab.B[f.pending.off:f.pending.end]
	added := 0
	var err error
	for {
		if f.size == 0 {
			if len(buf) < bip324.LengthSize {
				break
			}
			if err = f.length(buf); err != nil {
				break
			}
		}
		size := f.size
		if len(buf) < size {
			break
		}
		if b == nil {
			b = NewBatch()
		}
		fr := b.grow()
		fr.Magic = f.Opts.Magic
		fr.Length = uint32(size - bip324.Overhead)
		fr.Payload = buf[:size:size]
		f.size = 0
		added++
		buf = buf[size:]
	}
	if added > 0 {
		b.hold(slab)
	}
	if err != nil {
		return b, err
	}
	f.pending.off = f.pending.end - len(buf)
	if len(buf) == 0 {
		f.Reset()
	}
	return b, nil
}

// assemble completes the pending packet in a slab of its own, copying the
// pending bytes and as much of c as the packet needs. It returns what is
// left of c (Slab nil when nothing is), and b with the packet if it
// completed.
func (f *V2Framer) assemble(c Chunk, b *Batch) (Chunk, *Batch, error) {
	if f.size == 0 {
		pending := f.pendingBytes()
		var hdr [bip324.LengthSize]byte
		k := copy(hdr[copy(hdr[:], pending):], c.Bytes())
		if len(pending)+k < bip324.LengthSize {
			f.pending.keep(c, f.Opts.Budget) // still no whole length
			return Chunk{}, b, nil
		}
		if err := f.length(hdr[:]); err != nil {
			return c, b, err
		}
	}
	c, whole := f.pending.fill(c, f.size, f.Opts.Budget)
	if whole {
		var err error
		if b, err = f.scan(b); err != nil { // cuts exactly this packet
			return c, b, err
		}
	}
	return c, b, nil
}
