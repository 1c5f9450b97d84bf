package bip324

import (
	"encoding/hex"
	"fmt"
	"slices"
)

// Sizes and limits of packets.
const (
	// LengthSize is the encrypted length field that starts every packet.
	LengthSize = 3
	// HeaderSize is the header byte that starts the plaintext.
	HeaderSize = 1
	// TagSize is the Poly1305 tag that ends every packet.
	TagSize = 16
	// Overhead is a packet's size beyond its contents: LengthSize +
	// HeaderSize + TagSize = 20.
	Overhead = LengthSize + HeaderSize + TagSize
	// IgnoreBit is the header bit of a decoy packet.
	IgnoreBit = 0x80
	// MaxPacketContents is the largest contents the 3-byte length can say
	// (2^24-1). A Sender accepts up to this; a Receiver refuses more than
	// its limit.
	MaxPacketContents = 1<<24 - 1
	// MaxPayload is the largest message payload (Bitcoin Core's
	// MAX_PROTOCOL_MESSAGE_LENGTH), as for v1.
	MaxPayload = 4_000_000
	// MaxContents is the default receive limit, Bitcoin Core's
	// MAX_CONTENTS_LEN: the longest message type (LongTypeSize = 13 bytes)
	// plus MaxPayload = 4,000,013 bytes. The header byte is not part of the
	// contents (it is counted in Overhead).
	MaxContents = LongTypeSize + MaxPayload
)

// SessionID identifies an encrypted channel; both ends derive the same one.
// Its String is the hex that Bitcoin Core's getpeerinfo shows as session_id.
type SessionID [32]byte

// String returns the lower-case hex of the id.
func (id SessionID) String() string { return hex.EncodeToString(id[:]) }

// PacketLen is the size on the wire of a packet with contentsLen bytes of
// contents: what a framer cuts after DecryptLength.
func PacketLen(contentsLen uint32) int { return Overhead + int(contentsLen) }

// SealedLen is the size of the sealed part of a packet (everything after the
// length field) with contentsLen bytes of contents: what Open takes.
func SealedLen(contentsLen uint32) int { return HeaderSize + int(contentsLen) + TagSize }

// Sender encrypts the packets of one direction: a Seal of the contents and a
// Crypt of the length per packet. It is not safe for concurrent use: the
// packets of a direction are numbered in the order they are sent, so one
// writer owns it. It holds no pointers; a copy is a snapshot.
type Sender struct {
	length   FSChaCha20
	contents FSChaCha20Poly1305
}

// NewSender returns a Sender keyed with the length key l and the contents
// key p of one direction (see Keys).
func NewSender(l, p [32]byte) *Sender {
	return &Sender{length: NewFSChaCha20(l), contents: NewFSChaCha20Poly1305(p)}
}

// Packets returns the number of packets sent.
func (s *Sender) Packets() uint64 { return s.contents.Packets() }

// AppendPacket appends one encrypted packet holding contents to dst and
// returns the extended slice: the length, then the sealed header byte
// (IgnoreBit set for a decoy) and contents, then the tag. aad is
// authenticated with the packet (BIP324 uses it for the garbage, on the
// first packet only). It allocates nothing when cap(dst)-len(dst) >=
// PacketLen(len(contents)); contents must not overlap dst's spare capacity.
// It panics if len(contents) > MaxPacketContents.
func (s *Sender) AppendPacket(dst, contents, aad []byte, ignore bool) []byte {
	n := len(contents)
	if n > MaxPacketContents {
		panic(fmt.Sprintf("bip324: %d bytes of contents, more than %d", n, MaxPacketContents))
	}
	start := len(dst)
	dst = slices.Grow(dst, Overhead+n)[:start+LengthSize+HeaderSize]
	dst = append(dst, contents...)
	return s.seal(dst, start, aad, ignore)
}

// AppendMessage appends one encrypted packet holding the message command
// with payload, encoded as AppendContents does (a one-byte id from the BIP324
// table, or 0x00 and the 12-byte name), without an intermediate copy. It
// allocates nothing when dst has the capacity (PacketLen of the contents). It
// returns ErrBadCommand for a command that cannot be encoded, and
// ErrPacketTooLarge if the contents would exceed MaxPacketContents.
func (s *Sender) AppendMessage(dst []byte, command string, payload []byte) ([]byte, error) {
	typeLen := TypeLen(command)
	if typeLen == 0 {
		return dst, fmt.Errorf("bip324: command %q: %w", command, ErrBadCommand)
	}
	if typeLen+len(payload) > MaxPacketContents {
		return dst, fmt.Errorf("bip324: %s payload of %d bytes: %w", command, len(payload), ErrPacketTooLarge)
	}
	start := len(dst)
	dst = slices.Grow(dst, Overhead+typeLen+len(payload))[:start+LengthSize+HeaderSize]
	dst, _ = AppendContents(dst, command, payload)
	return s.seal(dst, start, nil, false), nil
}

// seal finishes the packet that starts at dst[start]: dst holds room for the
// length and the header, then the contents, and has TagSize bytes of spare
// capacity.
func (s *Sender) seal(dst []byte, start int, aad []byte, ignore bool) []byte {
	n := len(dst) - start - LengthSize - HeaderSize
	l := [LengthSize]byte{byte(n), byte(n >> 8), byte(n >> 16)}
	s.length.Crypt(dst[start:start+LengthSize], l[:])
	var h byte
	if ignore {
		h = IgnoreBit
	}
	dst[start+LengthSize] = h
	pt := dst[start+LengthSize:]
	s.contents.Seal(pt[:0], pt, aad)
	return dst[:len(dst)+TagSize]
}

// Receiver decrypts the packets of one direction. It has two halves that
// may run on two goroutines at once, each used sequentially, in packet order:
//
//   - the length half (DecryptLength), for the framer, which needs each
//     length to find where the next packet starts;
//   - the contents half (Open, or NextPacketKey with OpenWith on other
//     goroutines), for the verifier.
//
// SetMaxContents must be called before either half is in use. After any
// error the direction is finished: BIP324 requires the connection to end. It
// holds no pointers; a copy is a snapshot.
type Receiver struct {
	length   FSChaCha20
	contents FSChaCha20Poly1305
	max      uint32
}

// NewReceiver returns a Receiver keyed with the length key l and contents
// key p of one direction, with the limit MaxContents.
func NewReceiver(l, p [32]byte) *Receiver {
	return &Receiver{length: NewFSChaCha20(l), contents: NewFSChaCha20Poly1305(p), max: MaxContents}
}

// SetMaxContents sets the largest contents DecryptLength accepts (default
// MaxContents), capped at MaxPacketContents.
func (r *Receiver) SetMaxContents(n uint32) { r.max = min(n, MaxPacketContents) }

// MaxContents returns the limit DecryptLength applies.
func (r *Receiver) MaxContents() uint32 { return r.max }

// Lengths returns the number of lengths decrypted so far (the length half).
func (r *Receiver) Lengths() uint64 { return r.length.Chunks() }

// Packets returns the number of packets opened, or keys handed out, so far
// (the contents half).
func (r *Receiver) Packets() uint64 { return r.contents.Packets() }

// DecryptLength decrypts the length field in hdr[:LengthSize] (hdr is not
// modified) and returns the contents length: the packet is
// PacketLen(n) bytes from the start of hdr. A length over the limit is
// ErrPacketTooLarge, found before anything is read or allocated for the
// packet. It allocates nothing (but its errors do).
func (r *Receiver) DecryptLength(hdr []byte) (uint32, error) {
	if len(hdr) < LengthSize {
		return 0, fmt.Errorf("bip324: %d bytes for a %d-byte length: %w", len(hdr), LengthSize, ErrShortPacket)
	}
	var l [LengthSize]byte
	r.length.Crypt(l[:], hdr[:LengthSize])
	n := uint32(l[0]) | uint32(l[1])<<8 | uint32(l[2])<<16
	if n > r.max {
		return n, fmt.Errorf("bip324: packet of %d bytes of contents, limit %d: %w", n, r.max, ErrPacketTooLarge)
	}
	return n, nil
}

// Open authenticates and decrypts, in place, the sealed part of the next
// packet (sealed = packet[LengthSize:PacketLen(n)], SealedLen(n) bytes) with
// aad, and returns its contents and its ignore bit. contents aliases
// sealed[HeaderSize:]; the bytes of sealed are overwritten with the
// plaintext (on failure, with zeros or garbage). A bad tag is ErrBadTag. It
// allocates nothing.
func (r *Receiver) Open(sealed, aad []byte) (contents []byte, ignore bool, err error) {
	k := r.contents.Next()
	return OpenWith(&k, sealed, aad)
}

// NextPacketKey returns the key and nonce of the next packet and advances
// the contents half past it, for a verifier that opens packets on several
// goroutines: take the keys in packet order on one goroutine, then call
// OpenWith for each packet anywhere. It allocates nothing.
func (r *Receiver) NextPacketKey() PacketKey { return r.contents.Next() }

// OpenWith authenticates and decrypts one sealed packet in place with the
// key and nonce from NextPacketKey (see Receiver.Open for sealed, aad and the
// results), and clears k. It may run on any goroutine. It allocates nothing.
func OpenWith(k *PacketKey, sealed, aad []byte) (contents []byte, ignore bool, err error) {
	if len(sealed) < HeaderSize+TagSize {
		clear(k.Key[:])
		return nil, false, fmt.Errorf("bip324: %d sealed bytes: %w", len(sealed), ErrShortPacket)
	}
	pt, err := openRaw(k, sealed[:0], sealed, aad)
	if err != nil {
		return nil, false, err
	}
	return pt[HeaderSize:], pt[0]&IgnoreBit != 0, nil
}
