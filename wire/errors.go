package wire

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error a decoder returns wraps one of these, so
// callers can tell them apart with errors.Is.
var (
	// ErrBadMagic: the frame does not start with the expected network magic.
	ErrBadMagic = errors.New("bad magic")
	// ErrPayloadTooLarge: a header declares a payload over MaxPayload.
	ErrPayloadTooLarge = errors.New("payload too large")
	// ErrChecksum: the payload does not hash to the header's checksum.
	ErrChecksum = errors.New("bad checksum")
	// ErrBadCommand: the command has a non-printable byte, or a non-NUL
	// byte after its first NUL, or is empty.
	ErrBadCommand = errors.New("bad command")
	// ErrNonCanonicalVarInt: a CompactSize that fits a shorter encoding.
	ErrNonCanonicalVarInt = errors.New("non-canonical var int")
	// ErrTooManyEntries: a list count over the message's limit.
	ErrTooManyEntries = errors.New("too many entries")
	// ErrTruncated: the payload ends before the message does.
	ErrTruncated = errors.New("truncated")
	// ErrTrailingBytes: bytes remain after a complete message body.
	ErrTrailingBytes = errors.New("trailing bytes")
	// ErrStringTooLong: a var string longer than its limit.
	ErrStringTooLong = errors.New("string too long")
	// ErrBadAddress: an addrv2 entry of a known network with the wrong length,
	// or an address longer than MaxAddrV2Len.
	ErrBadAddress = errors.New("bad address")
)

// DecodeError says where decoding failed: the command, and the byte offset in
// the payload (or in the frame header for header errors) where the problem was
// found: the start of the bad field, or for ErrTruncated the length of what
// was given (where it ran out). Command is empty for errors found before the
// command is known (a bad magic or command, a short header, ReadVarString).
// It wraps one of the sentinel errors.
type DecodeError struct {
	Command string
	Offset  int
	Err     error
}

func (e *DecodeError) Error() string {
	if e.Command == "" {
		return fmt.Sprintf("wire: at offset %d: %v", e.Offset, e.Err)
	}
	return fmt.Sprintf("wire: %s at offset %d: %v", e.Command, e.Offset, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

func decodeErr(cmd string, off int, err error) error {
	return &DecodeError{Command: cmd, Offset: off, Err: err}
}
