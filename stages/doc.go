// Package stages holds the goroutine stages of a btcpipe connection: the
// reader, the framer, the checksum verifiers, the dispatcher and the writer.
// Package pipeline joins them with bounded channels under an errgroup.
//
// Every stage has the shape
//
//	Run(ctx context.Context, in <-chan In, out chan<- Out) error
//
// (the reader has no input and the writer no output). A stage returns when
// its input is closed, when ctx ends, or on an error; it never closes out —
// the runner does that when Run returns — and every send and receive selects
// on ctx.Done(). Stages report what they see to an Observer and return
// errors as *Error, naming the peer, the stage and the command; they do not
// log.
//
// # Buffers and who owns them
//
//   - Slab: the reader reads into reference-counted slabs and sends Chunks,
//     consecutive windows of the same slab. A Chunk carries one reference,
//     which the framer takes over.
//   - The framer cuts frames in place: consecutive chunks of one slab are
//     contiguous, so a frame split across reads is not copied. Only a frame
//     that straddles two slabs is copied, once, into an assembly slab of
//     exactly its size. The reader sizes new slabs from the framer's
//     ReadHint, so large messages rarely straddle.
//   - Batch: the frames the framer cut from one chunk, with a reference to
//     every slab they alias. A Batch is owned by whichever stage holds it;
//     the verifier may drop frames from it; the dispatcher, its last reader,
//     calls Release once every frame has been handled. Frame payloads (and
//     decoded messages, which may alias them) are valid only until then.
//   - The framer's unconsumed bytes (a tail: the start of an incomplete
//     frame) hold one reference to their slab, owned by the framer. A frame
//     of a command the session does not want (Options.Want) is skipped as
//     its bytes arrive: they are never held.
//   - CopyFramer, the baseline, owns a rolling buffer it copies every chunk
//     into (releasing the chunk at once) and copies each batch's frames into
//     a fresh slab the batch holds.
//   - Room in the receive budgets (Budget) is taken for a slab before it is
//     read into, and given back when its last reference is released.
//   - Outbound messages are values the writer encodes into its own reused
//     buffer; a message handed to the writer must not be changed afterwards.
//
// # BIP324 (v2)
//
// V2Framer, V2Verifier and V2Writer are the v2 counterparts of the framer,
// the verifier and the writer, keyed by a bip324 handshake's session. The
// framer cuts sealed packets in place exactly as Framer cuts frames (its
// frames' Payload is the whole packet until the verifier has run); the
// verifier decrypts each packet in place in its slab and rewrites the frame
// to the message it holds (Command from the message type, Payload aliasing
// the decrypted bytes), so the dispatcher and the batch ownership rules are
// the same for both transports. The framer uses the Receiver's length half
// and the verifier its contents half, each on its own goroutine.
package stages
