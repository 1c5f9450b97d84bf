package wire

import (
	"encoding/binary"
	"math"
)

// MaxVarIntSize is the longest CompactSize encoding.
const MaxVarIntSize = 9

// reader walks a payload. Every read method records the first error in err
// (wrapped with the command and offset) and makes later reads no-ops, so a
// decoder reads all fields and checks err once at the end.
type reader struct {
	cmd string
	b   []byte
	off int
	err error
}

func (r *reader) fail(off int, err error) {
	if r.err == nil {
		r.err = decodeErr(r.cmd, off, err)
	}
}

// take returns the next n bytes, or nil after recording ErrTruncated.
func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b)-r.off < n {
		r.fail(len(r.b), ErrTruncated)
		return nil
	}
	s := r.b[r.off : r.off+n]
	r.off += n
	return s
}

func (r *reader) remaining() int { return len(r.b) - r.off }

func (r *reader) uint8() uint8 {
	if s := r.take(1); s != nil {
		return s[0]
	}
	return 0
}

func (r *reader) uint16BE() uint16 {
	if s := r.take(2); s != nil {
		return binary.BigEndian.Uint16(s)
	}
	return 0
}

func (r *reader) uint32() uint32 {
	if s := r.take(4); s != nil {
		return binary.LittleEndian.Uint32(s)
	}
	return 0
}

func (r *reader) uint64() uint64 {
	if s := r.take(8); s != nil {
		return binary.LittleEndian.Uint64(s)
	}
	return 0
}

func (r *reader) bool() bool { return r.uint8() != 0 }

// varInt reads a canonical CompactSize.
func (r *reader) varInt() uint64 {
	if r.err != nil {
		return 0
	}
	v, n, err := ReadVarInt(r.b[r.off:])
	if err != nil {
		off := r.off
		if err == ErrTruncated {
			off = len(r.b) // like take: truncation is reported where the payload ended
		}
		r.fail(off, err)
		return 0
	}
	r.off += n
	return v
}

// count reads a list count and checks it against max and against the bytes
// left (each entry is at least minSize bytes), so that no caller allocates
// for entries that cannot be there.
func (r *reader) count(max int, minSize int) int {
	start := r.off
	n := r.varInt()
	if r.err != nil {
		return 0
	}
	if n > uint64(max) {
		r.fail(start, ErrTooManyEntries)
		return 0
	}
	if n*uint64(minSize) > uint64(r.remaining()) {
		r.fail(len(r.b), ErrTruncated)
		return 0
	}
	return int(n)
}

// varBytes reads a length-prefixed byte string of at most max bytes. The
// result aliases the payload.
func (r *reader) varBytes(max int) []byte {
	start := r.off
	n := r.varInt()
	if r.err != nil {
		return nil
	}
	if n > uint64(max) {
		r.fail(start, ErrStringTooLong)
		return nil
	}
	return r.take(int(n))
}

// end records ErrTrailingBytes if anything is left.
func (r *reader) end() error {
	if r.err == nil && r.off != len(r.b) {
		r.fail(r.off, ErrTrailingBytes)
	}
	return r.err
}

// ReadVarInt decodes a CompactSize from the start of b, returning the value
// and the number of bytes used. Like Bitcoin Core, it refuses an encoding
// longer than needed (ErrNonCanonicalVarInt); a short b is ErrTruncated.
func ReadVarInt(b []byte) (uint64, int, error) {
	if len(b) == 0 {
		return 0, 0, ErrTruncated
	}
	var v, min uint64
	var n int
	switch b[0] {
	case 0xfd:
		n, min = 3, 0xfd
		if len(b) < n {
			return 0, 0, ErrTruncated
		}
		v = uint64(binary.LittleEndian.Uint16(b[1:]))
	case 0xfe:
		n, min = 5, 0x10000
		if len(b) < n {
			return 0, 0, ErrTruncated
		}
		v = uint64(binary.LittleEndian.Uint32(b[1:]))
	case 0xff:
		n, min = 9, 0x100000000
		if len(b) < n {
			return 0, 0, ErrTruncated
		}
		v = binary.LittleEndian.Uint64(b[1:])
	default:
		return uint64(b[0]), 1, nil
	}
	if v < min {
		return 0, 0, ErrNonCanonicalVarInt
	}
	return v, n, nil
}

// AppendVarInt appends the canonical CompactSize encoding of v.
func AppendVarInt(dst []byte, v uint64) []byte {
	switch {
	case v < 0xfd:
		return append(dst, byte(v))
	case v <= math.MaxUint16:
		return binary.LittleEndian.AppendUint16(append(dst, 0xfd), uint16(v))
	case v <= math.MaxUint32:
		return binary.LittleEndian.AppendUint32(append(dst, 0xfe), uint32(v))
	default:
		return binary.LittleEndian.AppendUint64(append(dst, 0xff), v)
	}
}

// VarIntSize returns the length of the CompactSize encoding of v.
func VarIntSize(v uint64) int {
	switch {
	case v < 0xfd:
		return 1
	case v <= math.MaxUint16:
		return 3
	case v <= math.MaxUint32:
		return 5
	default:
		return 9
	}
}

// AppendVarString appends s as a CompactSize length followed by its bytes.
func AppendVarString(dst []byte, s string) []byte {
	dst = AppendVarInt(dst, uint64(len(s)))
	return append(dst, s...)
}

// AppendVarBytes appends b as a CompactSize length followed by its bytes.
func AppendVarBytes(dst []byte, b []byte) []byte {
	dst = AppendVarInt(dst, uint64(len(b)))
	return append(dst, b...)
}

// ReadVarString decodes a var string of at most max bytes from the start of
// b, returning it and the number of bytes used. The length is checked against
// max (ErrStringTooLong) before anything is allocated.
func ReadVarString(b []byte, max int) (string, int, error) {
	r := reader{b: b}
	s := r.varBytes(max)
	if r.err != nil {
		return "", 0, r.err
	}
	return string(s), r.off, nil
}
