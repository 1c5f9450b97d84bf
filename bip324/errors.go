package bip324

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error this package returns wraps one of these (or,
// for I/O failures, the underlying error, so errors.Is(err,
// os.ErrDeadlineExceeded) works), and errors.Is tells them apart.
var (
	// ErrPacketTooLarge: a decrypted length over the receive limit, or
	// contents too long to send. Refused before anything is allocated.
	ErrPacketTooLarge = errors.New("packet too large")
	// ErrBadTag: a packet's Poly1305 tag does not match. BIP324 requires
	// the connection to end: there is no dropping of one packet.
	ErrBadTag = errors.New("packet authentication failed")
	// ErrShortPacket: fewer bytes than a length field or a sealed packet
	// needs were passed (a caller error, or truncated input).
	ErrShortPacket = errors.New("short packet")
	// ErrEmptyContents: a non-decoy packet with no message type.
	ErrEmptyContents = errors.New("empty contents")
	// ErrUnknownShortID: a one-byte message type id with no message type
	// assigned. Bitcoin Core drops such a message and keeps the connection.
	ErrUnknownShortID = errors.New("unknown short message type id")
	// ErrBadCommand: a 13-byte long message type that is not 0x00 and 1 to
	// 12 printable ASCII bytes padded with NULs (or shorter than 13 bytes),
	// or a command that cannot be encoded so.
	ErrBadCommand = errors.New("bad long message type")
	// ErrNoGarbageTerminator: the peer's garbage terminator did not come
	// within MaxGarbage+TerminatorSize bytes after its public key.
	ErrNoGarbageTerminator = errors.New("no garbage terminator")
	// ErrV1Peer: v1 bytes where v2 was expected: a v1 message header
	// (network magic and a command, or any network's "version") at the
	// start of the peer's bytes.
	ErrV1Peer = errors.New("peer speaks v1")
	// ErrHandshakeClosed: the peer closed (or reset) the connection during
	// the handshake. HandshakeError.Received says how much it had sent; see
	// FallBackToV1.
	ErrHandshakeClosed = errors.New("peer closed the connection during the handshake")
	// ErrTooManyDecoys: more decoy packets before the version packet than
	// Config.MaxHandshakeDecoys allows.
	ErrTooManyDecoys = errors.New("too many decoy packets in the handshake")
	// ErrGarbageTooLarge: Config.Garbage is longer than MaxGarbage.
	ErrGarbageTooLarge = errors.New("garbage too large")
)

// HandshakeError is what Initiate and Respond return: the role, the phase
// that failed, how many bytes the peer had sent, and the cause (a sentinel
// above or an I/O error, which Unwrap exposes).
type HandshakeError struct {
	Initiator bool
	// Phase names the step: "send key", "read key", "send terminator",
	// "read garbage", "read version".
	Phase string
	// Received is the number of bytes read from the peer before the error.
	Received int
	Err      error
}

func (e *HandshakeError) Error() string {
	role := "responder"
	if e.Initiator {
		role = "initiator"
	}
	return fmt.Sprintf("bip324 %s handshake: %s (after %d bytes from the peer): %v", role, e.Phase, e.Received, e.Err)
}

func (e *HandshakeError) Unwrap() error { return e.Err }

// FallBackToV1 reports whether a failed v2 attempt as initiator should be
// retried with v1, the way Bitcoin Core does: the peer closed the connection
// before sending a single byte, or answered with v1 bytes.
func FallBackToV1(err error) bool {
	if errors.Is(err, ErrV1Peer) {
		return true
	}
	var he *HandshakeError
	return errors.As(err, &he) && he.Initiator && he.Received == 0 && errors.Is(err, ErrHandshakeClosed)
}
