// Package bip324 is the cryptographic and protocol core of the BIP324 v2
// encrypted transport: the rekeying ciphers FSChaCha20 (packet lengths) and
// FSChaCha20Poly1305 (packet contents), the key derivation, the one-byte
// message type ids, and the handshake as initiator (Initiate) and, for tests
// and fake peers, as responder (Respond).
//
// It is built from btcec's ellswift (ElligatorSwift encoding and X-only
// ECDH), golang.org/x/crypto's chacha20 and chacha20poly1305, and the
// standard library's crypto/hkdf. The pipeline's transport "v2" (its
// handshake, and the stages V2Framer, V2Verifier and V2Writer of package
// stages) uses it as follows.
//
// # Packets
//
// A packet is a 3-byte encrypted length n, then the ChaCha20-Poly1305
// sealing of a header byte (IgnoreBit: a decoy) and n bytes of contents,
// then a 16-byte tag: PacketLen(n) = n + Overhead (20) bytes. The contents
// are a message type (a one-byte id, or 0x00 and a 12-byte name) and the
// payload: DecodeContents and AppendContents.
//
// # How the stages use it
//
//   - Handshake: the session dials, sets a deadline, calls Initiate, and
//     hands Session.Send to the writer, Session.Recv to the framer and the
//     verifier, and Session.Leftover to the framer as the first bytes of
//     the stream. FallBackToV1 says whether to redial with v1.
//   - Framer (sequential, one goroutine): for each packet, when LengthSize
//     bytes are there, Recv.DecryptLength(slab[off:]) gives n, or
//     ErrPacketTooLarge before anything is read or allocated for it; the
//     packet is slab[off:off+PacketLen(n)]. The framer cuts it in place (the
//     length bytes are read, not changed) and passes the slab reference on.
//   - Verifier: Recv.Open(packet[LengthSize:], nil) authenticates and
//     decrypts the packet in place in the slab and returns the contents
//     (aliasing the slab) and the ignore bit. Open must be called in packet
//     order. To check tags on several goroutines instead, take
//     Recv.NextPacketKey() for each packet in order (cheap, sequential) and
//     call OpenWith(&key, packet[LengthSize:], nil) on any goroutine. A bad
//     tag (ErrBadTag) ends the connection. Decoys are dropped after they
//     authenticate; the rest go to DecodeContents, whose command is a
//     constant string for every known type, and whose payload aliases the
//     slab (valid until the slab is released).
//   - Writer (sequential): Send.AppendMessage(buf[:0], command, payload)
//     appends the encrypted packet to a reused buffer;
//     Send.AppendPacket(buf, contents, nil, true) sends a decoy.
//
// The length half and the contents half of a Receiver are independent: the
// framer and the verifier may use them at the same time. Once warm, none of
// DecryptLength, Open, NextPacketKey, OpenWith, AppendPacket,
// AppendMessage or DecodeContents allocates.
//
// # Limits
//
//   - MaxContents (4,000,013 = 13 + 4,000,000): the default receive limit
//     on a packet's contents, as Bitcoin Core's; Receiver.SetMaxContents
//     lowers it (a per-command limit needs the decrypted message type, so it
//     belongs after Open).
//   - MaxGarbage (4,095) and TerminatorSize (16): the garbage terminator
//     must come within 4,111 bytes after the key.
//   - Config.MaxHandshakeDecoys (default 64): decoys before the version
//     packet.
//
// # Errors
//
// Sentinels (ErrPacketTooLarge, ErrBadTag, ErrUnknownShortID,
// ErrBadCommand, ErrNoGarbageTerminator, ErrV1Peer, ErrHandshakeClosed,
// ErrTooManyDecoys, …), wrapped; handshake errors are *HandshakeError,
// naming the role, the phase and how many bytes the peer had sent.
package bip324
