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
//   - Outbound messages are values the writer encodes into its own reused
//     buffer; a message handed to the writer must not be changed afterwards.
package stages
