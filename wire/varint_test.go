package wire_test

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/btcpipe/btcpipe/wire"
)

func TestReadVarInt(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    uint64
		wantN   int
		wantErr error
	}{
		// Canonical encodings at each width and at each boundary.
		{name: "zero", in: "00", want: 0, wantN: 1},
		{name: "one byte max", in: "fc", want: 0xfc, wantN: 1},
		{name: "three byte min", in: "fd fd00", want: 0xfd, wantN: 3},
		{name: "three byte max", in: "fd ffff", want: 0xffff, wantN: 3},
		{name: "five byte min", in: "fe 00000100", want: 0x10000, wantN: 5},
		{name: "five byte max", in: "fe ffffffff", want: 0xffffffff, wantN: 5},
		{name: "nine byte min", in: "ff 0000000001000000", want: 0x100000000, wantN: 9},
		{name: "nine byte max", in: "ff ffffffffffffffff", want: math.MaxUint64, wantN: 9},
		{name: "trailing bytes are not read", in: "fd fd00 ffff", want: 0xfd, wantN: 3},

		// Non-canonical: a value that fits a shorter form, at each width.
		{name: "three byte zero", in: "fd 0000", wantErr: wire.ErrNonCanonicalVarInt},
		{name: "three byte 0xfc", in: "fd fc00", wantErr: wire.ErrNonCanonicalVarInt},
		{name: "five byte zero", in: "fe 00000000", wantErr: wire.ErrNonCanonicalVarInt},
		{name: "five byte 0xffff", in: "fe ffff0000", wantErr: wire.ErrNonCanonicalVarInt},
		{name: "nine byte zero", in: "ff 0000000000000000", wantErr: wire.ErrNonCanonicalVarInt},
		{name: "nine byte 0xffffffff", in: "ff ffffffff00000000", wantErr: wire.ErrNonCanonicalVarInt},

		// Truncated at each width.
		{name: "empty", in: "", wantErr: wire.ErrTruncated},
		{name: "three byte, no body", in: "fd", wantErr: wire.ErrTruncated},
		{name: "three byte, half body", in: "fd ff", wantErr: wire.ErrTruncated},
		{name: "five byte, 3 of 4", in: "fe ffffff", wantErr: wire.ErrTruncated},
		{name: "nine byte, 7 of 8", in: "ff ffffffffffffff", wantErr: wire.ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, n, err := wire.ReadVarInt(unhex(tt.in))
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("ReadVarInt(%s) error = %v, want %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want || n != tt.wantN {
				t.Errorf("ReadVarInt(%s) = %#x, %d; want %#x, %d", tt.in, got, n, tt.want, tt.wantN)
			}
		})
	}
}

func TestAppendVarInt(t *testing.T) {
	tests := []struct {
		v    uint64
		want string
	}{
		{v: 0, want: "00"},
		{v: 0xfc, want: "fc"},
		{v: 0xfd, want: "fdfd00"},
		{v: 0xffff, want: "fdffff"},
		{v: 0x10000, want: "fe00000100"},
		{v: 0xffffffff, want: "feffffffff"},
		{v: 0x100000000, want: "ff0000000001000000"},
		{v: math.MaxUint64, want: "ffffffffffffffffff"},
	}
	for _, tt := range tests {
		got := wire.AppendVarInt([]byte{0xaa}, tt.v)
		if want := append([]byte{0xaa}, unhex(tt.want)...); !bytes.Equal(got, want) {
			t.Errorf("AppendVarInt(%#x) = %x, want %x", tt.v, got, want)
		}
		if got, want := wire.VarIntSize(tt.v), len(unhex(tt.want)); got != want {
			t.Errorf("VarIntSize(%#x) = %d, want %d", tt.v, got, want)
		}
		back, n, err := wire.ReadVarInt(got[1:])
		if err != nil || back != tt.v || n != len(got)-1 {
			t.Errorf("ReadVarInt(AppendVarInt(%#x)) = %#x, %d, %v", tt.v, back, n, err)
		}
	}
	if got, want := wire.MaxVarIntSize, wire.VarIntSize(math.MaxUint64); got != want {
		t.Errorf("MaxVarIntSize = %d, want %d", got, want)
	}
}

func TestReadVarString(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		max     int
		want    string
		wantN   int
		wantErr error
	}{
		{name: "empty string", in: unhex("00"), max: 10, want: "", wantN: 1},
		{name: "short", in: unhex("03 616263 ff"), max: 10, want: "abc", wantN: 4},
		{name: "exactly max", in: unhex("03 616263"), max: 3, want: "abc", wantN: 4},
		{name: "one over max", in: unhex("04 61626364"), max: 3, wantErr: wire.ErrStringTooLong},
		{name: "user agent limit", in: append(unhex("fd0001"), strings.Repeat("u", 256)...), max: wire.MaxUserAgentLen,
			want: strings.Repeat("u", 256), wantN: 259},
		{name: "user agent limit + 1", in: append(unhex("fd0101"), strings.Repeat("u", 257)...), max: wire.MaxUserAgentLen,
			wantErr: wire.ErrStringTooLong},
		// A hostile length is refused by the limit before the bytes are looked for.
		{name: "huge length, no bytes", in: unhex("ff ffffffffffffffff"), max: 256, wantErr: wire.ErrStringTooLong},
		{name: "truncated body", in: unhex("05 6162"), max: 10, wantErr: wire.ErrTruncated},
		{name: "truncated length", in: unhex("fd 05"), max: 10, wantErr: wire.ErrTruncated},
		{name: "no length", in: nil, max: 10, wantErr: wire.ErrTruncated},
		{name: "non-canonical length", in: unhex("fd 0300 616263"), max: 10, wantErr: wire.ErrNonCanonicalVarInt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, n, err := wire.ReadVarString(tt.in, tt.max)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("ReadVarString error = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want || n != tt.wantN {
				t.Errorf("ReadVarString = %q, %d; want %q, %d", got, n, tt.want, tt.wantN)
			}
		})
	}
}

func TestAppendVarStringAndBytes(t *testing.T) {
	if got, want := wire.AppendVarString(nil, "abc"), unhex("03616263"); !bytes.Equal(got, want) {
		t.Errorf("AppendVarString = %x, want %x", got, want)
	}
	if got, want := wire.AppendVarBytes(nil, []byte{1, 2}), unhex("020102"); !bytes.Equal(got, want) {
		t.Errorf("AppendVarBytes = %x, want %x", got, want)
	}
	long := strings.Repeat("x", 300)
	got := wire.AppendVarString(nil, long)
	if want := append(unhex("fd2c01"), long...); !bytes.Equal(got, want) {
		t.Errorf("AppendVarString(300 bytes) starts %x, want %x", got[:3], want[:3])
	}
	s, n, err := wire.ReadVarString(got, 300)
	if err != nil || s != long || n != len(got) {
		t.Errorf("ReadVarString(AppendVarString(300 bytes)) = %d bytes, %d, %v", len(s), n, err)
	}
}

// TestReadVarStringCopies checks that the decoded string does not alias
// the input.
func TestReadVarStringCopies(t *testing.T) {
	in := unhex("03616263")
	s, _, err := wire.ReadVarString(in, 10)
	if err != nil {
		t.Fatal(err)
	}
	in[1] = 'z'
	if s != "abc" {
		t.Errorf("ReadVarString result changed with its input: %q", s)
	}
}
