package wire

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// Frame and payload limits.
const (
	// HeaderSize is the length of a frame header: magic (4), command (12),
	// payload length (4, little-endian) and checksum (4).
	HeaderSize = 24
	// CommandSize is the length of the NUL-padded command field.
	CommandSize = 12
	// MaxPayload is the largest payload a frame may declare (Bitcoin Core's
	// MAX_PROTOCOL_MESSAGE_LENGTH, btcd's MaxMessagePayload for peers).
	// ScanFrame and ParseHeader refuse a larger length before anything is
	// allocated or read.
	MaxPayload = 4_000_000
)

// EmptyChecksum is the checksum of an empty payload: the first four bytes of
// SHA-256d(""). Checksum returns it without hashing.
var EmptyChecksum = [4]byte{0x5d, 0xf6, 0xe0, 0xe2}

// Checksum returns the first four bytes of SHA-256(SHA-256(payload)).
// It does not allocate.
func Checksum(payload []byte) [4]byte {
	if len(payload) == 0 {
		return EmptyChecksum
	}
	first := sha256.Sum256(payload)
	second := sha256.Sum256(first[:])
	return [4]byte(second[:4])
}

// Header is a parsed 24-byte frame header.
type Header struct {
	Magic    Magic
	Command  [CommandSize]byte
	Length   uint32
	Checksum [4]byte
}

// CommandName returns the command as a string. For the commands this package
// knows it returns a constant and does not allocate.
func (h *Header) CommandName() string { return commandString(h.Command[:]) }

// ParseHeader parses the first HeaderSize bytes of b. It checks the command
// bytes and the declared length (at most MaxPayload) but not the magic, which
// only the caller knows; ScanFrame checks all three. It does not allocate.
func ParseHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < HeaderSize {
		return h, decodeErr("", len(b), ErrTruncated)
	}
	h.Magic = Magic(binary.LittleEndian.Uint32(b[0:4]))
	copy(h.Command[:], b[4:16])
	h.Length = binary.LittleEndian.Uint32(b[16:20])
	copy(h.Checksum[:], b[20:24])
	_, err := checkCommandAndLength(b)
	return h, err
}

// validCommand reports whether cmd is 1 to 12 printable ASCII bytes followed
// only by NULs; if not, it returns the offset of the first bad byte.
func validCommand(cmd []byte) (int, bool) {
	i := 0
	for ; i < len(cmd) && cmd[i] != 0; i++ {
		if cmd[i] < 0x20 || cmd[i] > 0x7e {
			return i, false
		}
	}
	if i == 0 {
		return 0, false
	}
	for j := i; j < len(cmd); j++ {
		if cmd[j] != 0 {
			return j, false
		}
	}
	return 0, true
}

// Frame is one complete frame: its header and its payload.
//
// Payload aliases the buffer the frame was scanned from; it is valid only as
// long as that buffer is, and must be copied to be kept longer.
type Frame struct {
	Header
	Payload []byte
}

// Verify reports whether the payload matches the header's checksum.
func (f *Frame) Verify() bool { return Checksum(f.Payload) == f.Checksum }

// Check is Verify as an error: nil, or a *DecodeError wrapping ErrChecksum
// that names the command (the offset is that of the checksum field).
func (f *Frame) Check() error {
	if f.Verify() {
		return nil
	}
	return &DecodeError{Command: f.CommandName(), Offset: 20, Err: ErrChecksum}
}

// ScanFrame looks for one complete frame at the start of buf, the bytes
// received so far on a stream of network magic.
//
//   - A complete frame: it returns the frame and n, the number of bytes it
//     used (HeaderSize + payload length); the caller drops buf[:n].
//   - Not enough bytes yet (fewer than a header, or a header whose payload has
//     not all arrived): it returns n == 0 and a nil error.
//   - A header that can never become valid (wrong magic, bad command, declared
//     length over MaxPayload, checked in that order): an error wrapping
//     ErrBadMagic, ErrBadCommand or ErrPayloadTooLarge, returned as soon as the
//     24 header bytes are there, before the payload arrives.
//
// The checksum is not verified (see Frame.Verify). ScanFrame neither
// allocates nor copies: the frame's Payload aliases buf.
func ScanFrame(buf []byte, magic Magic) (Frame, int, error) {
	if len(buf) < HeaderSize {
		return Frame{}, 0, nil
	}
	length, err := checkHeader(buf, magic)
	if err != nil {
		return Frame{}, 0, err
	}
	end := HeaderSize + int(length)
	if len(buf) < end {
		return Frame{}, 0, nil
	}
	h := Header{Magic: magic, Command: [CommandSize]byte(buf[4:16]), Length: length, Checksum: [4]byte(buf[20:24])}
	return Frame{Header: h, Payload: buf[HeaderSize:end:end]}, end, nil
}

// ScanFrameInto is ScanFrame writing the frame into *f, which it sets only
// when it returns n > 0. Scanning straight into where the frame is kept (a
// slot of the caller's slice) spares the copies of a returned Frame: on a
// stream of small frames, those copies (and the store-forwarding stalls
// they cause) cost more than finding the frame. Unlike ScanFrame's, its buf
// escapes (through f): give it heap memory, not a stack array.
func ScanFrameInto(f *Frame, buf []byte, magic Magic) (int, error) {
	if len(buf) < HeaderSize {
		return 0, nil
	}
	length, err := checkHeader(buf, magic)
	if err != nil {
		return 0, err
	}
	end := HeaderSize + int(length)
	if len(buf) < end {
		return 0, nil
	}
	f.Magic = magic
	f.Command = [CommandSize]byte(buf[4:16])
	f.Length = length
	f.Checksum = [4]byte(buf[20:24])
	f.Payload = buf[HeaderSize:end:end]
	return end, nil
}

// checkHeader checks the header at the start of buf (HeaderSize bytes at
// least) for ScanFrame and returns the payload length it declares.
func checkHeader(buf []byte, magic Magic) (uint32, error) {
	// The magic first, as Bitcoin Core does: bytes from another network (or
	// no network at all) are reported as such, not as a bad command.
	if Magic(binary.LittleEndian.Uint32(buf[0:4])) != magic {
		return 0, &DecodeError{Offset: 0, Err: ErrBadMagic}
	}
	return checkCommandAndLength(buf)
}

// checkCommandAndLength checks the command and the declared length of the
// header at the start of buf (HeaderSize bytes at least) and returns the
// length.
func checkCommandAndLength(buf []byte) (uint32, error) {
	if off, ok := validCommand(buf[4:16]); !ok {
		return 0, &DecodeError{Offset: 4 + off, Err: ErrBadCommand}
	}
	length := binary.LittleEndian.Uint32(buf[16:20])
	if length > MaxPayload {
		return 0, &DecodeError{Command: commandString(buf[4:16]), Offset: 16, Err: ErrPayloadTooLarge}
	}
	// The command's own limit (btcd's MaxPayloadLength): a ping of more
	// than 8 bytes is refused here, before its payload is read. Every
	// limit is at least 0, so an empty payload needs no look-up.
	if length > 0 {
		if i, ok := lookupRaw(buf[4:16]); ok && length > commands[i].MaxPayload {
			return 0, &DecodeError{Command: commands[i].Name, Offset: 16,
				Err: &LimitError{Command: commands[i].Name, Length: length, Limit: commands[i].MaxPayload}}
		}
	}
	return length, nil
}

// LimitError: a header declares a payload longer than the largest valid
// message of its command (MaxPayloadFor). It wraps ErrPayloadTooLarge.
type LimitError struct {
	Command       string
	Length, Limit uint32
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%v: %d bytes declared, the largest valid %s has %d", ErrPayloadTooLarge, e.Length, e.Command, e.Limit)
}

func (e *LimitError) Unwrap() error { return ErrPayloadTooLarge }

// Is reports whether target is a *LimitError saying the same: two limit
// errors of one header are the same error.
func (e *LimitError) Is(target error) bool {
	t, ok := target.(*LimitError)
	return ok && *t == *e
}

// AppendFrame appends a complete frame (header and payload) to dst.
func AppendFrame(dst []byte, magic Magic, command string, payload []byte) []byte {
	start := len(dst)
	dst = appendHeaderSpace(dst)
	dst = append(dst, payload...)
	finishHeader(dst[start:], magic, command)
	return dst
}

// AppendMessage appends m to dst as a complete frame of network magic. It
// encodes the payload in place after the header, so with enough capacity in
// dst it does not allocate.
func AppendMessage(dst []byte, magic Magic, m Message) []byte {
	start := len(dst)
	dst = appendHeaderSpace(dst)
	dst = m.AppendPayload(dst)
	finishHeader(dst[start:], magic, m.Command())
	return dst
}

func appendHeaderSpace(dst []byte) []byte {
	var zero [HeaderSize]byte
	return append(dst, zero[:]...)
}

// finishHeader fills the header of frame, whose payload follows it.
func finishHeader(frame []byte, magic Magic, command string) {
	payload := frame[HeaderSize:]
	binary.LittleEndian.PutUint32(frame[0:4], uint32(magic))
	var cmd [CommandSize]byte
	copy(cmd[:], command)
	copy(frame[4:16], cmd[:])
	binary.LittleEndian.PutUint32(frame[16:20], uint32(len(payload)))
	sum := Checksum(payload)
	copy(frame[20:24], sum[:])
}
