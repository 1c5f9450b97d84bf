package wire_test

import (
	"errors"
	"testing"

	"github.com/btcpipe/btcpipe/wire"
)

var sentinels = []error{
	wire.ErrBadMagic, wire.ErrPayloadTooLarge, wire.ErrChecksum, wire.ErrBadCommand,
	wire.ErrNonCanonicalVarInt, wire.ErrTooManyEntries, wire.ErrTruncated,
	wire.ErrTrailingBytes, wire.ErrStringTooLong, wire.ErrBadAddress,
}

// TestSentinelsAreDistinct: no sentinel matches another under errors.Is.
func TestSentinelsAreDistinct(t *testing.T) {
	for i, a := range sentinels {
		for j, b := range sentinels {
			if (i == j) != errors.Is(a, b) {
				t.Errorf("errors.Is(%v, %v) = %v", a, b, errors.Is(a, b))
			}
		}
	}
}

// TestEveryErrorPathIsASentinel reaches each sentinel a function of the
// package returns (ErrChecksum is for callers of Frame.Verify, which returns
// a bool) and checks errors.Is, errors.As and the message.
func TestEveryErrorPathIsASentinel(t *testing.T) {
	main := wire.Mainnet.Magic
	scan := func(b []byte) error { _, _, err := wire.ScanFrame(b, main); return err }
	decode := func(cmd string, p []byte) error { _, err := wire.Decode(cmd, p); return err }
	tests := []struct {
		name    string
		err     error
		want    error
		wantMsg string
		wantCmd string
		wantOff int
	}{
		{name: "bad magic", err: scan(header(wire.Regtest.Magic, "ping", 8, [4]byte{})),
			want: wire.ErrBadMagic, wantMsg: "wire: at offset 0: bad magic"},
		{name: "bad command", err: scan(header(main, "pi\x00ng", 8, [4]byte{})),
			want: wire.ErrBadCommand, wantMsg: "wire: at offset 7: bad command", wantOff: 7},
		{name: "payload too large", err: scan(header(main, "block", 4_000_001, [4]byte{})),
			want: wire.ErrPayloadTooLarge, wantMsg: "wire: block at offset 16: payload too large", wantCmd: "block", wantOff: 16},
		{name: "short header", err: func() error { _, err := wire.ParseHeader(make([]byte, 10)); return err }(),
			want: wire.ErrTruncated, wantMsg: "wire: at offset 10: truncated", wantOff: 10},
		{name: "non-canonical", err: decode("inv", unhex("fd0000")),
			want: wire.ErrNonCanonicalVarInt, wantMsg: "wire: inv at offset 0: non-canonical var int", wantCmd: "inv"},
		{name: "too many entries", err: decode("addr", unhex("fde903")),
			want: wire.ErrTooManyEntries, wantMsg: "wire: addr at offset 0: too many entries", wantCmd: "addr"},
		{name: "truncated", err: decode("pong", unhex("0102")),
			want: wire.ErrTruncated, wantMsg: "wire: pong at offset 2: truncated", wantCmd: "pong", wantOff: 2},
		{name: "trailing bytes", err: decode("verack", unhex("00")),
			want: wire.ErrTrailingBytes, wantMsg: "wire: verack at offset 0: trailing bytes", wantCmd: "verack"},
		{name: "string too long", err: decode("reject", unhex("fd0001")),
			want: wire.ErrStringTooLong, wantMsg: "wire: reject at offset 0: string too long", wantCmd: "reject"},
		{name: "bad address", err: decode("addrv2", unhex("01 00000000 00 01 05 0102030405 0000")),
			want: wire.ErrBadAddress, wantMsg: "wire: addrv2 at offset 7: bad address", wantCmd: "addrv2", wantOff: 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !errors.Is(tt.err, tt.want) {
				t.Fatalf("error = %v, want %v", tt.err, tt.want)
			}
			for _, other := range sentinels {
				if other != tt.want && errors.Is(tt.err, other) {
					t.Errorf("error %v also matches %v", tt.err, other)
				}
			}
			var de *wire.DecodeError
			if !errors.As(tt.err, &de) {
				t.Fatalf("error %T is not a *DecodeError", tt.err)
			}
			if de.Command != tt.wantCmd || de.Offset != tt.wantOff || de.Unwrap() != tt.want {
				t.Errorf("DecodeError = %+v, want command %q offset %d", de, tt.wantCmd, tt.wantOff)
			}
			if got := tt.err.Error(); got != tt.wantMsg {
				t.Errorf("Error() = %q, want %q", got, tt.wantMsg)
			}
		})
	}
}

// TestReadVarIntErrorsAreBareSentinels documents that the primitive
// ReadVarInt returns the sentinels themselves (it knows no command or
// offset); ReadVarString wraps them in a *DecodeError without a command.
func TestReadVarIntErrorsAreBareSentinels(t *testing.T) {
	if _, _, err := wire.ReadVarInt(nil); err != wire.ErrTruncated {
		t.Errorf("ReadVarInt(nil) = %v, want ErrTruncated itself", err)
	}
	if _, _, err := wire.ReadVarInt(unhex("fd0000")); err != wire.ErrNonCanonicalVarInt {
		t.Errorf("ReadVarInt(fd0000) = %v, want ErrNonCanonicalVarInt itself", err)
	}
	_, _, err := wire.ReadVarString(unhex("05"), 10)
	var de *wire.DecodeError
	if !errors.As(err, &de) || de.Command != "" || de.Offset != 1 || !errors.Is(err, wire.ErrTruncated) {
		t.Errorf("ReadVarString(05) = %#v, want a *DecodeError at offset 1 wrapping ErrTruncated", err)
	}
}

// TestErrorsWrapFurther: a caller that wraps a wire error (with the peer, as
// the pipeline does) keeps errors.Is and errors.As working.
func TestErrorsWrapFurther(t *testing.T) {
	_, err := wire.Decode("ping", []byte{1})
	wrapped := &peerError{peer: "203.0.113.7:8333", err: err}
	if !errors.Is(wrapped, wire.ErrTruncated) {
		t.Errorf("errors.Is(wrapped, ErrTruncated) = false")
	}
	var de *wire.DecodeError
	if !errors.As(wrapped, &de) || de.Command != "ping" {
		t.Errorf("errors.As(wrapped) = %+v", de)
	}
}

type peerError struct {
	peer string
	err  error
}

func (e *peerError) Error() string { return e.peer + ": " + e.err.Error() }
func (e *peerError) Unwrap() error { return e.err }
