package wire_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/btcpipe/btcpipe/wire"
)

// header builds a 24-byte header from its parts.
func header(magic wire.Magic, cmd string, length uint32, sum [4]byte) []byte {
	var h [wire.HeaderSize]byte
	binary.LittleEndian.PutUint32(h[0:], uint32(magic))
	copy(h[4:16], cmd)
	binary.LittleEndian.PutUint32(h[16:], length)
	copy(h[20:], sum[:])
	return h[:]
}

func TestEmptyChecksumIsSHA256dOfNothing(t *testing.T) {
	first := sha256.Sum256(nil)
	second := sha256.Sum256(first[:])
	if got, want := wire.EmptyChecksum, [4]byte(second[:4]); got != want {
		t.Errorf("EmptyChecksum = %x, want %x", got, want)
	}
	if got, want := wire.Checksum(nil), wire.EmptyChecksum; got != want {
		t.Errorf("Checksum(nil) = %x, want %x", got, want)
	}
	if got, want := wire.Checksum([]byte{}), wire.EmptyChecksum; got != want {
		t.Errorf("Checksum([]byte{}) = %x, want %x", got, want)
	}
}

func TestChecksum(t *testing.T) {
	tests := []struct {
		name    string
		payload []byte
		want    string
	}{
		// The wiki frames' header checksums.
		{name: "wiki version", payload: unhex(wikiVersionFrame)[24:], want: "3b648d5a"},
		{name: "wiki addr", payload: unhex(wikiAddrFrame)[24:], want: "ed52399b"},
		{name: "wiki pong", payload: unhex(wikiPongFrame)[24:], want: "eaf3b51d"},
	}
	for _, tt := range tests {
		got := wire.Checksum(tt.payload)
		if want := [4]byte(unhex(tt.want)); got != want {
			t.Errorf("%s: Checksum = %x, want %x", tt.name, got, want)
		}
	}
}

func TestParseHeader(t *testing.T) {
	const main = wire.Magic(0xd9b4bef9)
	tests := []struct {
		name       string
		in         []byte
		wantCmd    string
		wantLen    uint32
		wantErr    error
		wantOffset int
	}{
		{name: "wiki verack", in: unhex(wikiVerackFrame), wantCmd: "verack"},
		{name: "wiki version", in: unhex(wikiVersionFrame)[:24], wantCmd: "version", wantLen: 100},
		{name: "12-byte command", in: header(main, "abcdefghijkl", 0, wire.EmptyChecksum), wantCmd: "abcdefghijkl"},
		{name: "1-byte command", in: header(main, "x", 7, wire.EmptyChecksum), wantCmd: "x", wantLen: 7},
		{name: "printable edges", in: header(main, " ~", 0, wire.EmptyChecksum), wantCmd: " ~"},
		{name: "exactly MaxPayload", in: header(main, "block", wire.MaxPayload, [4]byte{}), wantCmd: "block", wantLen: wire.MaxPayload},
		// ParseHeader does not check the magic; ScanFrame does.
		{name: "any magic", in: header(0x01020304, "ping", 8, [4]byte{}), wantCmd: "ping", wantLen: 8},

		{name: "short", in: unhex(wikiVerackFrame)[:23], wantErr: wire.ErrTruncated, wantOffset: 23},
		{name: "empty", in: nil, wantErr: wire.ErrTruncated, wantOffset: 0},
		{name: "empty command", in: header(main, "", 0, wire.EmptyChecksum), wantErr: wire.ErrBadCommand, wantOffset: 4},
		{name: "control byte", in: header(main, "ver\x01ack", 0, wire.EmptyChecksum), wantErr: wire.ErrBadCommand, wantOffset: 7},
		{name: "DEL byte", in: header(main, "verack\x7f", 0, wire.EmptyChecksum), wantErr: wire.ErrBadCommand, wantOffset: 10},
		{name: "high byte", in: header(main, "\xffping", 0, wire.EmptyChecksum), wantErr: wire.ErrBadCommand, wantOffset: 4},
		{name: "byte after NUL", in: header(main, "ping\x00x", 0, wire.EmptyChecksum), wantErr: wire.ErrBadCommand, wantOffset: 9},
		{name: "byte after NUL at the end", in: header(main, "ping\x00\x00\x00\x00\x00\x00\x00!", 0, wire.EmptyChecksum), wantErr: wire.ErrBadCommand, wantOffset: 15},
		{name: "leading NUL", in: header(main, "\x00ping", 0, wire.EmptyChecksum), wantErr: wire.ErrBadCommand, wantOffset: 4},
		{name: "length MaxPayload+1", in: header(main, "block", wire.MaxPayload+1, [4]byte{}), wantErr: wire.ErrPayloadTooLarge, wantOffset: 16},
		{name: "length 4,000,001", in: header(main, "tx", 4_000_001, [4]byte{}), wantErr: wire.ErrPayloadTooLarge, wantOffset: 16},
		{name: "length 0xffffffff", in: header(main, "tx", 0xffffffff, [4]byte{}), wantErr: wire.ErrPayloadTooLarge, wantOffset: 16},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := wire.ParseHeader(tt.in)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("ParseHeader error = %v, want %v", err, tt.wantErr)
				}
				var de *wire.DecodeError
				if !errors.As(err, &de) {
					t.Fatalf("ParseHeader error %T is not a *DecodeError", err)
				}
				if de.Offset != tt.wantOffset {
					t.Errorf("ParseHeader error offset = %d, want %d", de.Offset, tt.wantOffset)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseHeader error = %v", err)
			}
			if got := h.CommandName(); got != tt.wantCmd {
				t.Errorf("CommandName = %q, want %q", got, tt.wantCmd)
			}
			if h.Length != tt.wantLen {
				t.Errorf("Length = %d, want %d", h.Length, tt.wantLen)
			}
			if got, want := h.Magic, wire.Magic(binary.LittleEndian.Uint32(tt.in)); got != want {
				t.Errorf("Magic = %v, want %v", got, want)
			}
			if got, want := h.Checksum, [4]byte(tt.in[20:24]); got != want {
				t.Errorf("Checksum = %x, want %x", got, want)
			}
		})
	}
}

func TestScanFrame(t *testing.T) {
	const main = wire.Magic(0xd9b4bef9)
	ping := wire.AppendMessage(nil, main, &wire.Ping{Nonce: 7})
	tests := []struct {
		name    string
		in      []byte
		magic   wire.Magic
		wantN   int
		wantCmd string
		wantErr error
	}{
		{name: "wiki version", in: unhex(wikiVersionFrame), magic: main, wantN: 124, wantCmd: "version"},
		{name: "wiki verack", in: unhex(wikiVerackFrame), magic: main, wantN: 24, wantCmd: "verack"},
		{name: "frame and more", in: append(bytes.Clone(ping), 0xf9, 0xbe), magic: main, wantN: 32, wantCmd: "ping"},
		{name: "need payload", in: ping[:31], magic: main},
		{name: "need header", in: ping[:23], magic: main},
		{name: "nothing", in: nil, magic: main},

		{name: "bad magic", in: ping, magic: wire.Regtest.Magic, wantErr: wire.ErrBadMagic},
		// The magic is checked first: garbage is reported as a wrong network.
		{name: "bad magic and command", in: header(0x11223344, "\x01", 0, wire.EmptyChecksum), magic: main, wantErr: wire.ErrBadMagic},
		{name: "non-printable command", in: header(main, "pi\nng", 8, [4]byte{}), magic: main, wantErr: wire.ErrBadCommand},
		{name: "bytes after NUL", in: header(main, "ping\x00\x00g", 8, [4]byte{}), magic: main, wantErr: wire.ErrBadCommand},
		{name: "empty command", in: header(main, "", 8, [4]byte{}), magic: main, wantErr: wire.ErrBadCommand},
		// Refused as soon as the 24 header bytes are there, with none of the payload.
		{name: "length 4,000,001", in: header(main, "block", 4_000_001, [4]byte{}), magic: main, wantErr: wire.ErrPayloadTooLarge},
		{name: "length 0xffffffff", in: header(main, "block", 0xffffffff, [4]byte{}), magic: main, wantErr: wire.ErrPayloadTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, n, err := wire.ScanFrame(tt.in, tt.magic)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("ScanFrame error = %v, want %v", err, tt.wantErr)
			}
			if n != tt.wantN {
				t.Fatalf("ScanFrame n = %d, want %d", n, tt.wantN)
			}
			if n == 0 {
				if f.Payload != nil || f.Length != 0 {
					t.Errorf("ScanFrame returned a frame with n == 0: %+v", f)
				}
				return
			}
			if got := f.CommandName(); got != tt.wantCmd {
				t.Errorf("command = %q, want %q", got, tt.wantCmd)
			}
			if got, want := len(f.Payload), int(f.Length); got != want {
				t.Errorf("len(Payload) = %d, want %d", got, want)
			}
			if !f.Verify() {
				t.Errorf("Verify() = false on a valid frame")
			}
			if len(f.Payload) > 0 && &f.Payload[0] != &tt.in[wire.HeaderSize] {
				t.Errorf("Payload does not alias the buffer")
			}
			if cap(f.Payload) != len(f.Payload) {
				t.Errorf("cap(Payload) = %d, want %d (appending must not write into the next frame)", cap(f.Payload), len(f.Payload))
			}
		})
	}
}

// TestScanFrameNeedsMore cuts valid frames at every length: every strict
// prefix says "need more" (n == 0, no error), the whole frame is found.
func TestScanFrameNeedsMore(t *testing.T) {
	frames := map[string][]byte{
		"verack":  unhex(wikiVerackFrame),
		"version": unhex(wikiVersionFrame),
		"addr":    unhex(wikiAddrFrame),
		"pong":    unhex(wikiPongFrame),
	}
	for name, frame := range frames {
		for i := 0; i < len(frame); i++ {
			f, n, err := wire.ScanFrame(frame[:i], wire.Mainnet.Magic)
			if err != nil || n != 0 || f.Payload != nil {
				t.Errorf("%s: ScanFrame(first %d of %d bytes) = n %d, err %v; want n 0, nil", name, i, len(frame), n, err)
			}
		}
		f, n, err := wire.ScanFrame(frame, wire.Mainnet.Magic)
		if err != nil || n != len(frame) || f.CommandName() != name || !f.Verify() {
			t.Errorf("%s: ScanFrame(whole) = %q, %d, %v; want %q, %d, nil", name, f.CommandName(), n, err, name, len(frame))
		}
	}
}

// TestScanFrameRefusesEarly: a bad header is refused with exactly 24 bytes,
// whatever follows (here, nothing).
func TestScanFrameRefusesEarly(t *testing.T) {
	bad := header(wire.Mainnet.Magic, "tx", 0xffffffff, [4]byte{})
	for i := 0; i < wire.HeaderSize; i++ {
		if _, n, err := wire.ScanFrame(bad[:i], wire.Mainnet.Magic); n != 0 || err != nil {
			t.Errorf("ScanFrame(first %d header bytes) = %d, %v; want 0, nil", i, n, err)
		}
	}
	if _, n, err := wire.ScanFrame(bad, wire.Mainnet.Magic); n != 0 || !errors.Is(err, wire.ErrPayloadTooLarge) {
		t.Errorf("ScanFrame(24 header bytes) = %d, %v; want 0, ErrPayloadTooLarge", n, err)
	}
}

func TestScanFrameBackToBack(t *testing.T) {
	magic := wire.Testnet4.Magic
	var buf []byte
	buf = wire.AppendMessage(buf, magic, &wire.Ping{Nonce: 1, HasNonce: true})
	buf = wire.AppendMessage(buf, magic, &wire.Verack{})
	buf = wire.AppendMessage(buf, magic, &wire.FeeFilter{FeeRate: 1000})
	want := []struct {
		cmd     string
		payload string
	}{
		{cmd: "ping", payload: "0100000000000000"},
		{cmd: "verack", payload: ""},
		{cmd: "feefilter", payload: "e803000000000000"},
	}
	for i, w := range want {
		f, n, err := wire.ScanFrame(buf, magic)
		if err != nil || n == 0 {
			t.Fatalf("frame %d: ScanFrame = %d, %v", i, n, err)
		}
		if got := f.CommandName(); got != w.cmd {
			t.Errorf("frame %d: command = %q, want %q", i, got, w.cmd)
		}
		if !bytes.Equal(f.Payload, unhex(w.payload)) {
			t.Errorf("frame %d: payload = %x, want %s", i, f.Payload, w.payload)
		}
		if !f.Verify() {
			t.Errorf("frame %d: bad checksum", i)
		}
		buf = buf[n:]
	}
	if len(buf) != 0 {
		t.Errorf("%d bytes left after three frames", len(buf))
	}
}

func TestFrameVerify(t *testing.T) {
	frame := unhex(wikiPongFrame)
	f, _, err := wire.ScanFrame(frame, wire.Mainnet.Magic)
	if err != nil || !f.Verify() {
		t.Fatalf("wiki pong: err %v, Verify %v", err, f.Verify())
	}
	frame[len(frame)-1] ^= 1
	f, _, _ = wire.ScanFrame(frame, wire.Mainnet.Magic)
	if f.Verify() {
		t.Errorf("Verify() = true after a payload bit flip")
	}
	frame[len(frame)-1] ^= 1
	frame[20] ^= 1
	f, _, _ = wire.ScanFrame(frame, wire.Mainnet.Magic)
	if f.Verify() {
		t.Errorf("Verify() = true after a checksum bit flip")
	}
}

func TestAppendMessageMatchesWikiFrames(t *testing.T) {
	tests := []struct {
		name  string
		msg   wire.Message
		frame string
	}{
		{name: "verack", msg: &wire.Verack{}, frame: wikiVerackFrame},
		{name: "pong", msg: &wire.Pong{Nonce: 0x4dafe21121109401}, frame: wikiPongFrame},
		{name: "addr", msg: &wire.Addr{List: []wire.TimedNetAddr{
			{Time: 0x4d1015e2, NetAddr: wire.NetAddr{Services: wire.NodeNetwork, Addr: mustAddrPort("10.0.0.1:8333")}},
		}}, frame: wikiAddrFrame},
	}
	for _, tt := range tests {
		prefix := []byte("prefix")
		got := wire.AppendMessage(bytes.Clone(prefix), wire.Mainnet.Magic, tt.msg)
		if want := append(prefix, unhex(tt.frame)...); !bytes.Equal(got, want) {
			t.Errorf("%s: AppendMessage =\n%x\nwant\n%x", tt.name, got, want)
		}
		got = wire.AppendFrame(nil, wire.Mainnet.Magic, tt.msg.Command(), tt.msg.AppendPayload(nil))
		if want := unhex(tt.frame); !bytes.Equal(got, want) {
			t.Errorf("%s: AppendFrame =\n%x\nwant\n%x", tt.name, got, want)
		}
	}
}

// TestAppendFrameLongCommand documents that a command longer than 12 bytes
// is cut to 12 (AppendFrame cannot fail); callers must not use one.
func TestAppendFrameLongCommand(t *testing.T) {
	frame := wire.AppendFrame(nil, wire.Mainnet.Magic, "thirteenchars", nil)
	f, _, err := wire.ScanFrame(frame, wire.Mainnet.Magic)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := f.CommandName(), "thirteenchar"; got != want {
		t.Errorf("command = %q, want %q", got, want)
	}
}

func TestCommandNameKnownCommandsDoNotAllocate(t *testing.T) {
	for _, cmd := range wire.KnownCommands {
		h, err := wire.ParseHeader(header(wire.Mainnet.Magic, cmd, 0, wire.EmptyChecksum))
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		if got := h.CommandName(); got != cmd {
			t.Errorf("CommandName = %q, want %q", got, cmd)
		}
		if allocs := testing.AllocsPerRun(100, func() { _ = h.CommandName() }); allocs != 0 && !raceEnabled {
			t.Errorf("%s: CommandName allocates %v times, want 0", cmd, allocs)
		}
	}
	if len(wire.KnownCommands) != 25 {
		t.Errorf("len(KnownCommands) = %d, want 25", len(wire.KnownCommands))
	}
}

func TestFrameCheck(t *testing.T) {
	good := wire.AppendMessage(nil, wire.Mainnet.Magic, &wire.Ping{Nonce: 7, HasNonce: true})
	f, _, err := wire.ScanFrame(good, wire.Mainnet.Magic)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Check(); err != nil {
		t.Errorf("Check() of a good frame = %v, want nil", err)
	}
	f.Payload[0] ^= 1
	err = f.Check()
	var de *wire.DecodeError
	if !errors.Is(err, wire.ErrChecksum) || !errors.As(err, &de) || de.Command != wire.CmdPing {
		t.Errorf("Check() of a damaged ping = %v, want ErrChecksum naming ping", err)
	}
}
