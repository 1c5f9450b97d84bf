package wire_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/btcpipe/btcpipe/wire"
)

func TestSamplesEncode(t *testing.T) {
	for _, s := range samples(t) {
		t.Run(s.name, func(t *testing.T) {
			got := s.msg.AppendPayload([]byte("keep"))
			if !bytes.HasPrefix(got, []byte("keep")) {
				t.Fatalf("AppendPayload overwrote dst: %x", got)
			}
			got = got[4:]
			if s.hex == "" {
				return
			}
			if want := unhex(s.hex); !bytes.Equal(got, want) {
				t.Errorf("AppendPayload =\n%x\nwant\n%x", got, want)
			}
		})
	}
}

func TestSamplesRoundTrip(t *testing.T) {
	for _, s := range samples(t) {
		t.Run(s.name, func(t *testing.T) {
			payload := s.msg.AppendPayload(nil)
			if s.hex != "" {
				payload = unhex(s.hex) // decode the pinned bytes, not our own
			}
			got := wire.New(s.msg.Command())
			if err := got.Decode(payload); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !sameMessage(got, s.msg) {
				t.Errorf("Decode =\n%+v\nwant\n%+v", got, s.msg)
			}
			if again := got.AppendPayload(nil); !bytes.Equal(again, s.msg.AppendPayload(nil)) {
				t.Errorf("re-encoded =\n%x\nwant\n%x", again, s.msg.AppendPayload(nil))
			}
		})
	}
}

// TestDecodeDoesNotAlias: after Decode, changing the payload changes nothing
// in the message (strings and addresses are copied).
func TestDecodeDoesNotAlias(t *testing.T) {
	for _, s := range samples(t) {
		payload := s.msg.AppendPayload(nil)
		m := wire.New(s.msg.Command())
		if err := m.Decode(payload); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		for i := range payload {
			payload[i] ^= 0xff
		}
		if !sameMessage(m, s.msg) {
			t.Errorf("%s: decoded message changed with its payload: %+v", s.name, m)
		}
	}
}

// TestTruncatedAtEveryOffset decodes every strict prefix of every sample:
// each must fail with ErrTruncated, except the shorter forms the protocol
// allows (see shorterValid: version's optional trailing fields, empty ping).
func TestTruncatedAtEveryOffset(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	msgs := samples(t)
	for _, cmd := range decodedCommands {
		for i := range 3 {
			m := randMessage(r, cmd)
			if l, ok := m.(*wire.Addr); ok && len(l.List) > 5 {
				l.List = l.List[:5] // quadratic otherwise; the samples cover the limits
			}
			if l, ok := m.(*wire.AddrV2); ok && len(l.List) > 5 {
				l.List = l.List[:5]
			}
			msgs = append(msgs, sample{name: fmt.Sprintf("random %s %d", cmd, i), msg: m})
		}
	}
	for _, s := range msgs {
		cmd := s.msg.Command()
		payload := s.msg.AppendPayload(nil)
		if len(payload) > 4000 {
			payload = payload[:4000] // a huge inv; 4,000 cuts are plenty
		}
		ok := shorterValid(cmd, s.msg.AppendPayload(nil))
		for i := 0; i < len(payload); i++ {
			err := wire.New(cmd).Decode(payload[:i])
			if ok[i] {
				if err != nil {
					t.Errorf("%s: %d-byte prefix is a valid shorter form, got %v", s.name, i, err)
				}
				continue
			}
			if !errors.Is(err, wire.ErrTruncated) {
				t.Errorf("%s: Decode(first %d of %d bytes) = %v, want ErrTruncated", s.name, i, len(payload), err)
				continue
			}
			var de *wire.DecodeError
			if !errors.As(err, &de) || de.Command != cmd || de.Offset != i {
				t.Errorf("%s: Decode(first %d bytes) = %#v, want a *DecodeError for %q at offset %d", s.name, i, err, cmd, i)
			}
		}
	}
}

// TestTrailingByte: one byte after a complete body is ErrTrailingBytes, at
// the offset where the body ended.
func TestTrailingByte(t *testing.T) {
	for _, s := range samples(t) {
		payload := s.msg.AppendPayload(nil)
		err := wire.New(s.msg.Command()).Decode(append(payload, 0))
		if !errors.Is(err, wire.ErrTrailingBytes) {
			t.Errorf("%s: Decode(payload+1) = %v, want ErrTrailingBytes", s.name, err)
			continue
		}
		var de *wire.DecodeError
		if !errors.As(err, &de) || de.Offset != len(payload) || de.Command != s.msg.Command() {
			t.Errorf("%s: error = %#v, want command %q offset %d", s.name, err, s.msg.Command(), len(payload))
		}
	}
}

// TestRoundTripRandom: encode → decode → equal values → encode gives the
// same bytes, for random messages of every type.
func TestRoundTripRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	n := 300
	if testing.Short() {
		n = 30
	}
	for _, cmd := range decodedCommands {
		for range n {
			m := randMessage(r, cmd)
			payload := m.AppendPayload(nil)
			got := wire.New(cmd)
			if err := got.Decode(payload); err != nil {
				t.Fatalf("%s: Decode(AppendPayload(%+v)): %v", cmd, m, err)
			}
			if !sameMessage(got, m) {
				t.Fatalf("%s: round trip =\n%+v\nwant\n%+v", cmd, got, m)
			}
			if again := got.AppendPayload(nil); !bytes.Equal(again, payload) {
				t.Fatalf("%s: re-encoded bytes differ", cmd)
			}
		}
	}
}

type decodeCase struct {
	name       string
	cmd        string
	payload    []byte
	wantErr    error
	wantOffset int
}

func runDecodeErrors(t *testing.T, tests []decodeCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.cmd+"/"+tt.name, func(t *testing.T) {
			m, err := wire.Decode(tt.cmd, tt.payload)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Decode error = %v, want %v", err, tt.wantErr)
			}
			if m != nil {
				t.Errorf("Decode returned a message with an error: %+v", m)
			}
			var de *wire.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T is not a *DecodeError", err)
			}
			if de.Command != tt.cmd || de.Offset != tt.wantOffset {
				t.Errorf("DecodeError{Command: %q, Offset: %d}, want {%q, %d}", de.Command, de.Offset, tt.cmd, tt.wantOffset)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	versionHead := unhex(samples(t)[0].hex)[:80] // through the nonce
	ver := func(rest ...[]byte) []byte { return bytes.Join(append([][]byte{versionHead}, rest...), nil) }
	ua257 := append(unhex("fd0101"), strings.Repeat("a", 257)...)
	ua256 := append(unhex("fd0001"), strings.Repeat("a", 256)...)
	str112 := append([]byte{112}, strings.Repeat("r", 112)...)
	hash := bytes.Repeat([]byte{0xab}, 32)

	runDecodeErrors(t, []decodeCase{
		// version
		{name: "user agent 257 bytes", cmd: "version", payload: ver(ua257, unhex("00000000 01")), wantErr: wire.ErrStringTooLong, wantOffset: 80},
		{name: "user agent 2^64-1 bytes", cmd: "version", payload: ver(unhex("ffffffffffffffffff")), wantErr: wire.ErrStringTooLong, wantOffset: 80},
		{name: "user agent non-canonical length", cmd: "version", payload: ver(unhex("fd0300 616263")), wantErr: wire.ErrNonCanonicalVarInt, wantOffset: 80},
		{name: "user agent cut", cmd: "version", payload: ver(unhex("0a 616263")), wantErr: wire.ErrTruncated, wantOffset: 84},
		{name: "user agent 256 then trailing", cmd: "version", payload: ver(ua256, unhex("00000000 01 00")), wantErr: wire.ErrTrailingBytes, wantOffset: 80 + 3 + 256 + 5},
		{name: "addr_from without nonce", cmd: "version", payload: versionHead[:72], wantErr: wire.ErrTruncated, wantOffset: 72},
		{name: "start height cut", cmd: "version", payload: ver(unhex("00 0102")), wantErr: wire.ErrTruncated, wantOffset: 83},

		// empty messages
		{name: "one byte", cmd: "verack", payload: []byte{0}, wantErr: wire.ErrTrailingBytes},
		{name: "one byte", cmd: "getaddr", payload: []byte{0}, wantErr: wire.ErrTrailingBytes},
		{name: "one byte", cmd: "sendaddrv2", payload: []byte{1}, wantErr: wire.ErrTrailingBytes},
		{name: "one byte", cmd: "wtxidrelay", payload: []byte{1}, wantErr: wire.ErrTrailingBytes},
		{name: "eight bytes", cmd: "sendheaders", payload: make([]byte, 8), wantErr: wire.ErrTrailingBytes},

		// fixed-size messages
		{name: "7 bytes", cmd: "ping", payload: make([]byte, 7), wantErr: wire.ErrTruncated, wantOffset: 7},
		{name: "9 bytes", cmd: "ping", payload: make([]byte, 9), wantErr: wire.ErrTrailingBytes, wantOffset: 8},
		{name: "empty", cmd: "pong", payload: nil, wantErr: wire.ErrTruncated, wantOffset: 0},
		{name: "9 bytes", cmd: "pong", payload: make([]byte, 9), wantErr: wire.ErrTrailingBytes, wantOffset: 8},
		{name: "8 bytes", cmd: "sendcmpct", payload: make([]byte, 8), wantErr: wire.ErrTruncated, wantOffset: 8},
		{name: "10 bytes", cmd: "sendcmpct", payload: make([]byte, 10), wantErr: wire.ErrTrailingBytes, wantOffset: 9},
		{name: "empty", cmd: "feefilter", payload: nil, wantErr: wire.ErrTruncated},
		{name: "9 bytes", cmd: "feefilter", payload: make([]byte, 9), wantErr: wire.ErrTrailingBytes, wantOffset: 8},

		// addr
		{name: "empty", cmd: "addr", payload: nil, wantErr: wire.ErrTruncated},
		{name: "1001 entries", cmd: "addr", payload: append(unhex("fde903"), make([]byte, 1001*30)...), wantErr: wire.ErrTooManyEntries},
		{name: "2^64-1 entries", cmd: "addr", payload: unhex("ffffffffffffffffff"), wantErr: wire.ErrTooManyEntries},
		{name: "1000 entries, no bytes", cmd: "addr", payload: unhex("fde803"), wantErr: wire.ErrTruncated, wantOffset: 3},
		{name: "2 entries, 59 bytes", cmd: "addr", payload: append([]byte{2}, make([]byte, 59)...), wantErr: wire.ErrTruncated, wantOffset: 60},
		{name: "non-canonical count", cmd: "addr", payload: append(unhex("fd0100"), make([]byte, 30)...), wantErr: wire.ErrNonCanonicalVarInt},
		{name: "trailing", cmd: "addr", payload: append([]byte{1}, make([]byte, 31)...), wantErr: wire.ErrTrailingBytes, wantOffset: 31},

		// addrv2: see also TestAddrV2Entries
		{name: "1001 entries", cmd: "addrv2", payload: append(unhex("fde903"), make([]byte, 1001*9)...), wantErr: wire.ErrTooManyEntries},
		{name: "1000 entries, 8999 bytes", cmd: "addrv2", payload: append(unhex("fde803"), make([]byte, 8999)...), wantErr: wire.ErrTruncated, wantOffset: 9002},

		// inv, getdata, notfound
		{name: "50001 entries", cmd: "inv", payload: append(unhex("fd51c3"), make([]byte, 50001*36)...), wantErr: wire.ErrTooManyEntries},
		{name: "50001 entries", cmd: "getdata", payload: unhex("fd51c3"), wantErr: wire.ErrTooManyEntries},
		{name: "50001 entries", cmd: "notfound", payload: unhex("fd51c3"), wantErr: wire.ErrTooManyEntries},
		{name: "50000 entries, no bytes", cmd: "inv", payload: unhex("fd50c3"), wantErr: wire.ErrTruncated, wantOffset: 3},
		{name: "1 entry, 35 bytes", cmd: "getdata", payload: append([]byte{1}, make([]byte, 35)...), wantErr: wire.ErrTruncated, wantOffset: 36},
		{name: "non-canonical count", cmd: "notfound", payload: append(unhex("fd0100"), make([]byte, 36)...), wantErr: wire.ErrNonCanonicalVarInt},
		{name: "trailing", cmd: "inv", payload: append([]byte{1}, make([]byte, 37)...), wantErr: wire.ErrTrailingBytes, wantOffset: 37},
		{name: "empty", cmd: "notfound", payload: nil, wantErr: wire.ErrTruncated},

		// reject
		{name: "message 112 bytes", cmd: "reject", payload: bytes.Join([][]byte{str112, {1}, {0}}, nil), wantErr: wire.ErrStringTooLong},
		{name: "reason 112 bytes", cmd: "reject", payload: bytes.Join([][]byte{unhex("0474657374 01"), str112}, nil), wantErr: wire.ErrStringTooLong, wantOffset: 6},
		{name: "tx without hash", cmd: "reject", payload: unhex("027478 10 00"), wantErr: wire.ErrTruncated, wantOffset: 5},
		{name: "block with 31-byte hash", cmd: "reject", payload: bytes.Join([][]byte{unhex("05626c6f636b 10 00"), hash[:31]}, nil), wantErr: wire.ErrTruncated, wantOffset: 39},
		{name: "version with a hash", cmd: "reject", payload: bytes.Join([][]byte{unhex("0776657273696f6e 11 00"), hash}, nil), wantErr: wire.ErrTrailingBytes, wantOffset: 10},
		{name: "no code", cmd: "reject", payload: unhex("00"), wantErr: wire.ErrTruncated, wantOffset: 1},
		{name: "non-canonical reason length", cmd: "reject", payload: unhex("00 01 fd0000"), wantErr: wire.ErrNonCanonicalVarInt, wantOffset: 2},
	})
}

func TestDecodeShorterForms(t *testing.T) {
	full := unhex(samples(t)[0].hex)
	uaEnd := 80 + 1 + len("/btcpipe:0.1.0/")
	base := wire.Version{
		Protocol: 70016, Services: wire.NodeNetwork | wire.NodeWitness | wire.NodeNetworkLimited, Timestamp: 1700000000,
		AddrRecv: wire.NetAddr{Addr: mustAddrPort("203.0.113.7:8333")},
	}
	withFrom := base
	withFrom.AddrFrom = wire.NetAddr{Services: wire.NodeWitness, Addr: mustAddrPort("[2001:db8::1]:18444")}
	withFrom.Nonce = 0x0123456789abcdef
	withUA := withFrom
	withUA.UserAgent = "/btcpipe:0.1.0/"
	withHeight := withUA
	withHeight.StartHeight = 850000

	tests := []struct {
		name    string
		cmd     string
		payload []byte
		want    wire.Message
	}{
		{name: "version to addr_recv", cmd: "version", payload: full[:46], want: with(base, true)},
		{name: "version to nonce", cmd: "version", payload: full[:80], want: with(withFrom, true)},
		{name: "version to user agent", cmd: "version", payload: full[:uaEnd], want: with(withUA, true)},
		{name: "version to start height", cmd: "version", payload: full[:uaEnd+4], want: with(withHeight, true)},
		{name: "version relay 0", cmd: "version", payload: full, want: with(withHeight, false)},
		{name: "version relay 2 is true", cmd: "version", payload: append(bytes.Clone(full[:uaEnd+4]), 2), want: with(withHeight, true)},
		{name: "empty ping (pre-BIP31)", cmd: "ping", payload: nil, want: &wire.Ping{}},
		{name: "ping nonce 0", cmd: "ping", payload: make([]byte, 8), want: &wire.Ping{HasNonce: true}},
		{name: "sendcmpct announce byte 7", cmd: "sendcmpct", payload: unhex("07 0100000000000000"), want: &wire.SendCmpct{Announce: true, Version: 1}},
		{name: "addr with no entries", cmd: "addr", payload: []byte{0}, want: &wire.Addr{}},
		{name: "inv with no entries", cmd: "inv", payload: []byte{0}, want: &wire.Inv{}},
		{name: "reject, empty strings", cmd: "reject", payload: unhex("00 01 00"), want: &wire.Reject{Code: wire.RejectMalformed}},
		{name: "reject, 111-byte reason", cmd: "reject", payload: bytes.Join([][]byte{unhex("00 40 6f"), bytes.Repeat([]byte("r"), 111)}, nil),
			want: &wire.Reject{Code: wire.RejectNonstandard, Reason: strings.Repeat("r", 111)}},
		{name: "reject of a block", cmd: "reject", payload: bytes.Join([][]byte{unhex("05626c6f636b 43 00"), bytes.Repeat([]byte{7}, 32)}, nil),
			want: &wire.Reject{Message: "block", Code: wire.RejectCheckpoint, Hash: [32]byte(bytes.Repeat([]byte{7}, 32))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := wire.Decode(tt.cmd, tt.payload)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !sameMessage(got, tt.want) {
				t.Errorf("Decode =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func with(v wire.Version, relay bool) *wire.Version {
	v.Relay = relay
	return &v
}

// TestEmptyPingEncodesNonce documents that encoding always writes the nonce,
// so an empty ping re-encodes as an 8-byte ping with nonce 0.
func TestEmptyPingEncodesNonce(t *testing.T) {
	var p wire.Ping
	if err := p.Decode(nil); err != nil {
		t.Fatal(err)
	}
	if got, want := p.AppendPayload(nil), make([]byte, 8); !bytes.Equal(got, want) {
		t.Errorf("AppendPayload = %x, want %x", got, want)
	}
}

// TestDecodeReplaces: decoding into a used value replaces what it held.
func TestDecodeReplaces(t *testing.T) {
	for _, s := range samples(t) {
		m := wire.New(s.msg.Command())
		if err := m.Decode(s.msg.AppendPayload(nil)); err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(5, 6))
		next := randMessage(r, s.msg.Command())
		if err := m.Decode(next.AppendPayload(nil)); err != nil {
			t.Fatal(err)
		}
		if !sameMessage(m, next) {
			t.Errorf("%s: second Decode =\n%+v\nwant\n%+v", s.name, m, next)
		}
	}
}

func TestNewAndDecode(t *testing.T) {
	for _, cmd := range decodedCommands {
		m := wire.New(cmd)
		if got := m.Command(); got != cmd {
			t.Errorf("New(%q).Command() = %q", cmd, got)
		}
		if _, raw := m.(*wire.Raw); raw {
			t.Errorf("New(%q) = *Raw, want its own type", cmd)
		}
	}
	for _, cmd := range []string{"tx", "block", "headers", "mempool", "somethingnew"} {
		payload := []byte{1, 2, 3}
		m, err := wire.Decode(cmd, payload)
		if err != nil {
			t.Fatalf("Decode(%q): %v", cmd, err)
		}
		raw, ok := m.(*wire.Raw)
		if !ok || raw.Cmd != cmd || raw.Command() != cmd {
			t.Fatalf("Decode(%q) = %#v, want *Raw", cmd, m)
		}
		if &raw.Payload[0] != &payload[0] {
			t.Errorf("Raw.Payload does not alias the payload")
		}
		if got := raw.AppendPayload([]byte{9}); !bytes.Equal(got, []byte{9, 1, 2, 3}) {
			t.Errorf("Raw.AppendPayload = %x", got)
		}
	}
}

func TestDecoder(t *testing.T) {
	var d wire.Decoder
	seen := map[string]wire.Message{}
	for range 2 {
		for _, s := range samples(t) {
			cmd := s.msg.Command()
			m, err := d.Decode(cmd, s.msg.AppendPayload(nil))
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			if reflect.TypeOf(m) != reflect.TypeOf(s.msg) {
				t.Errorf("%s: Decoder.Decode = %T, want %T", s.name, m, s.msg)
			}
			if !sameMessage(m, s.msg) {
				t.Errorf("%s: Decoder.Decode =\n%+v\nwant\n%+v", s.name, m, s.msg)
			}
			if prev, ok := seen[cmd]; ok && prev != m {
				t.Errorf("%s: Decoder returned a new message, want the one it owns", s.name)
			}
			seen[cmd] = m
		}
	}

	// The result is valid until the next Decode of the same command.
	first, _ := d.Decode("pong", unhex("0100000000000000"))
	if _, err := d.Decode("pong", unhex("0200000000000000")); err != nil {
		t.Fatal(err)
	}
	if got := first.(*wire.Pong).Nonce; got != 2 {
		t.Errorf("an earlier pong now has nonce %d, want 2 (it is the Decoder's)", got)
	}

	// Errors return no message.
	if m, err := d.Decode("pong", nil); m != nil || !errors.Is(err, wire.ErrTruncated) {
		t.Errorf("Decoder.Decode(pong, nil) = %v, %v; want nil, ErrTruncated", m, err)
	}

	// Unknown commands come back as the Decoder's Raw, aliasing the payload.
	payload := []byte("raw bytes")
	m, err := d.Decode("tx", payload)
	if err != nil {
		t.Fatal(err)
	}
	raw, ok := m.(*wire.Raw)
	if !ok || raw.Cmd != "tx" || &raw.Payload[0] != &payload[0] {
		t.Errorf("Decoder.Decode(tx) = %#v, want a *Raw aliasing the payload", m)
	}
	m2, _ := d.Decode("headers", nil)
	if m2.Command() != "headers" || m2 != m {
		t.Errorf("second raw = %#v, want the same *Raw with command headers", m2)
	}
}
