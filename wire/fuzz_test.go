package wire_test

// Fuzz targets. Each is seeded from testdata/fuzz/<FuzzName>/, written by
// TestFuzzSeeds (go test -run TestFuzzSeeds ./wire/ -update-fuzz-seeds) from
// real messages and edge cases; crashers found by fuzzing are committed
// there too. Run one with, e.g.:
//
//	go test -run='^$' -fuzz='^FuzzDecodeAddrV2$' -fuzztime=60s ./wire/
//
// Properties checked for every decoder: it never panics; an error is a
// *DecodeError for the command, at an offset within the payload, wrapping
// exactly one sentinel; on success, encode → decode → encode gives the same
// bytes, and canonical input re-encodes to itself; the decoded value retains
// at most a linear amount of memory (16 bytes per payload byte + 1 KiB);
// Decode, New(cmd).Decode and a warm Decoder agree.

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unsafe"

	"github.com/btcpipe/btcpipe/wire"
)

// fuzzDecoder is reused across fuzz inputs, so that decoding into a warm,
// dirty Decoder is compared with decoding into fresh values. Fuzz functions
// run one input at a time in a process.
var fuzzDecoder wire.Decoder

func FuzzScanFrame(f *testing.F) {
	magic := wire.Mainnet.Magic
	f.Fuzz(func(t *testing.T, buf []byte) {
		fr, n, err := wire.ScanFrame(buf, magic)
		if err != nil {
			if n != 0 || fr.Payload != nil {
				t.Fatalf("error %v with n %d, payload %d bytes", err, n, len(fr.Payload))
			}
			if !errors.Is(err, wire.ErrBadMagic) && !errors.Is(err, wire.ErrBadCommand) && !errors.Is(err, wire.ErrPayloadTooLarge) {
				t.Fatalf("unexpected error %v", err)
			}
			if len(buf) < wire.HeaderSize {
				t.Fatalf("error %v before a whole header", err)
			}
			return
		}
		h, herr := wire.ParseHeader(buf)
		if n == 0 {
			// Need more: fewer than 24 bytes, or a good header whose payload has not all arrived.
			if len(buf) >= wire.HeaderSize && (herr != nil || len(buf) >= wire.HeaderSize+int(h.Length)) {
				t.Fatalf("n == 0 with %d bytes, header %+v, %v", len(buf), h, herr)
			}
			return
		}
		if herr != nil || h != fr.Header {
			t.Fatalf("ParseHeader = %+v, %v; ScanFrame = %+v", h, herr, fr.Header)
		}
		if n != wire.HeaderSize+int(fr.Length) || n > len(buf) || int(fr.Length) > wire.MaxPayload {
			t.Fatalf("n = %d, Length = %d, len(buf) = %d", n, fr.Length, len(buf))
		}
		if len(fr.Payload) != int(fr.Length) || cap(fr.Payload) != len(fr.Payload) {
			t.Fatalf("payload len %d cap %d, Length %d", len(fr.Payload), cap(fr.Payload), fr.Length)
		}
		if len(fr.Payload) > 0 && &fr.Payload[0] != &buf[wire.HeaderSize] {
			t.Fatalf("payload does not alias buf")
		}
		if fr.Magic != magic {
			t.Fatalf("magic %v", fr.Magic)
		}
		// A valid header re-encodes to itself; with a good checksum, the whole frame does.
		again := wire.AppendFrame(nil, magic, fr.CommandName(), fr.Payload)
		if !bytes.Equal(again[:20], buf[:20]) {
			t.Fatalf("AppendFrame header %x, scanned %x", again[:20], buf[:20])
		}
		if fr.Verify() != bytes.Equal(again[20:24], buf[20:24]) {
			t.Fatalf("Verify() = %v, checksums %x and %x", fr.Verify(), again[20:24], buf[20:24])
		}
	})
}

func FuzzReadVarInt(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		v, n, err := wire.ReadVarInt(b)
		if err != nil {
			if n != 0 || v != 0 {
				t.Fatalf("error %v with %d, %d", err, v, n)
			}
			switch {
			case errors.Is(err, wire.ErrTruncated):
				if len(b) > 0 && len(b) >= map[byte]int{0xfd: 3, 0xfe: 5, 0xff: 9}[b[0]] {
					t.Fatalf("ErrTruncated with %d bytes %x", len(b), b)
				}
			case errors.Is(err, wire.ErrNonCanonicalVarInt):
			default:
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if n < 1 || n > len(b) || n != wire.VarIntSize(v) {
			t.Fatalf("n = %d for %d bytes, value %#x", n, len(b), v)
		}
		if enc := wire.AppendVarInt(nil, v); !bytes.Equal(enc, b[:n]) {
			t.Fatalf("AppendVarInt(%#x) = %x, read from %x", v, enc, b[:n])
		}
	})
}

func FuzzReadVarString(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte, max int) {
		max = min(max, 1<<20)
		if max < 0 {
			max = -(max + 1)
		}
		s, n, err := wire.ReadVarString(b, max)
		if err != nil {
			checkDecodeError(t, "", len(b), err)
			return
		}
		if len(s) > max || n > len(b) {
			t.Fatalf("%d-byte string (max %d), n %d of %d", len(s), max, n, len(b))
		}
		if enc := wire.AppendVarString(nil, s); !bytes.Equal(enc, b[:n]) {
			t.Fatalf("AppendVarString = %x, read from %x", enc, b[:n])
		}
	})
}

func FuzzParseTorV3Host(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		key, err := wire.ParseTorV3Host(s)
		if err == nil {
			if got := wire.TorV3Host(key); got != strings.ToLower(s) || !strings.EqualFold(got, s) || len(s) != 62 {
				t.Fatalf("ParseTorV3Host(%q) = %x, which renders as %q", s, key, got)
			}
		}
		if len(s) >= 32 {
			k := [32]byte([]byte(s[:32]))
			host := wire.TorV3Host(k)
			if len(host) != 62 || !strings.HasSuffix(host, ".onion") {
				t.Fatalf("TorV3Host(%x) = %q", k, host)
			}
			back, err := wire.ParseTorV3Host(host)
			if err != nil || back != k {
				t.Fatalf("ParseTorV3Host(TorV3Host(%x)) = %x, %v", k, back, err)
			}
		}
	})
}

// checkDecodeError: err is a *DecodeError for cmd at an offset within the
// payload, wrapping exactly one sentinel.
func checkDecodeError(t *testing.T, cmd string, payloadLen int, err error) {
	t.Helper()
	var de *wire.DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("error %T %v is not a *DecodeError", err, err)
	}
	if de.Command != cmd || de.Offset < 0 || de.Offset > payloadLen {
		t.Fatalf("DecodeError{%q, %d} for %q, %d-byte payload", de.Command, de.Offset, cmd, payloadLen)
	}
	matched := 0
	for _, s := range sentinels {
		if errors.Is(err, s) {
			matched++
		}
	}
	if matched != 1 {
		t.Fatalf("error %v matches %d sentinels", err, matched)
	}
}

// retained returns the bytes m holds beyond its own struct.
func retained(m wire.Message) int {
	switch v := m.(type) {
	case *wire.Version:
		return len(v.UserAgent)
	case *wire.Reject:
		return len(v.Message) + len(v.Reason)
	case *wire.Addr:
		return cap(v.List) * int(unsafe.Sizeof(wire.TimedNetAddr{}))
	case *wire.AddrV2:
		return cap(v.List) * int(unsafe.Sizeof(wire.NetAddrV2{}))
	case *wire.Inv:
		return cap(v.List) * int(unsafe.Sizeof(wire.InvVect{}))
	case *wire.GetData:
		return cap(v.List) * int(unsafe.Sizeof(wire.InvVect{}))
	case *wire.NotFound:
		return cap(v.List) * int(unsafe.Sizeof(wire.InvVect{}))
	}
	return 0
}

// canonical reports whether a payload that decoded into m must re-encode to
// itself: true except where the format allows several spellings of one value.
func canonical(m wire.Message, payload, enc []byte) bool {
	switch v := m.(type) {
	case *wire.Version:
		// Short forms re-encode with every field; a relay byte other than 0 or 1 as 1.
		return len(enc) == len(payload) && payload[len(payload)-1] <= 1
	case *wire.Ping:
		return v.HasNonce
	case *wire.SendCmpct:
		return payload[0] <= 1
	case *wire.AddrV2:
		n, _, _ := wire.ReadVarInt(payload)
		return n == uint64(len(v.List)) // no entry skipped
	}
	return true
}

// checkDecode runs the decoder properties on one input.
func checkDecode(t *testing.T, cmd string, payload []byte) {
	t.Helper()
	m := wire.New(cmd)
	err := m.Decode(payload)
	warm, werr := fuzzDecoder.Decode(cmd, payload)
	if (err == nil) != (werr == nil) || (err != nil && err.Error() != werr.Error()) {
		t.Fatalf("Decode: %v; warm Decoder: %v", err, werr)
	}
	if err != nil {
		checkDecodeError(t, cmd, len(payload), err)
		return
	}
	if bound := 16*len(payload) + 1024; retained(m) > bound {
		t.Fatalf("%d-byte payload retains %d bytes, bound %d", len(payload), retained(m), bound)
	}
	enc := m.AppendPayload(nil)
	if !bytes.Equal(warm.AppendPayload(nil), enc) {
		t.Fatalf("warm Decoder's message encodes differently")
	}
	if canonical(m, payload, enc) && !bytes.Equal(enc, payload) {
		t.Fatalf("canonical payload\n%x\nre-encodes as\n%x", payload, enc)
	}
	m2 := wire.New(cmd)
	if err := m2.Decode(enc); err != nil {
		t.Fatalf("our own encoding %x does not decode: %v", enc, err)
	}
	if enc2 := m2.AppendPayload(nil); !bytes.Equal(enc2, enc) {
		t.Fatalf("encode → decode → encode not stable:\n%x\n%x", enc, enc2)
	}
	// Decoding a canonical form twice gives the same value.
	m3 := wire.New(cmd)
	if err := m3.Decode(enc); err != nil || !sameMessage(m3, m2) {
		t.Fatalf("second decode of %x: %+v, %v; want %+v", enc, m3, err, m2)
	}
}

func FuzzDecodeVersion(f *testing.F) {
	f.Fuzz(func(t *testing.T, p []byte) { checkDecode(t, wire.CmdVersion, p) })
}

func FuzzDecodePing(f *testing.F) {
	f.Fuzz(func(t *testing.T, p []byte) { checkDecode(t, wire.CmdPing, p) })
}

func FuzzDecodePong(f *testing.F) {
	f.Fuzz(func(t *testing.T, p []byte) { checkDecode(t, wire.CmdPong, p) })
}

func FuzzDecodeAddr(f *testing.F) {
	f.Fuzz(func(t *testing.T, p []byte) { checkDecode(t, wire.CmdAddr, p) })
}

func FuzzDecodeAddrV2(f *testing.F) {
	f.Fuzz(func(t *testing.T, p []byte) {
		checkDecode(t, wire.CmdAddrV2, p)
		var m wire.AddrV2
		if m.Decode(p) != nil {
			return
		}
		for _, a := range m.List {
			switch a.Network {
			case wire.NetIPv4:
				if !a.IP().Is4() {
					t.Fatalf("ipv4 entry with IP %v", a.IP())
				}
			case wire.NetIPv6, wire.NetCJDNS:
				if !a.IP().Is6() || a.IP().Zone() != "" {
					t.Fatalf("%v entry with IP %v", a.Network, a.IP())
				}
				if a.Network == wire.NetIPv6 && (a.IP().Is4In6() || onionCat.Contains(a.IP())) {
					t.Fatalf("ipv6 entry %v should have been skipped", a.IP())
				}
			case wire.NetTorV3:
				if _, err := wire.ParseTorV3Host(a.Host()); err != nil {
					t.Fatalf("Tor v3 host %q does not parse: %v", a.Host(), err)
				}
			case wire.NetI2P:
				if h := a.Host(); len(h) != 52+len(".b32.i2p") || !strings.HasSuffix(h, ".b32.i2p") {
					t.Fatalf("I2P host %q", h)
				}
			default:
				t.Fatalf("entry of network %v kept", a.Network)
			}
			if _, ok := a.AddrPort(); ok != (a.IP().IsValid()) {
				t.Fatalf("AddrPort ok = %v for %+v", ok, a)
			}
		}
	})
}

// FuzzDecodeInv decodes the payload as inv, getdata and notfound: the three
// share one body and must agree.
func FuzzDecodeInv(f *testing.F) {
	f.Fuzz(func(t *testing.T, p []byte) {
		var got [3][]byte
		var errs [3]error
		for i, cmd := range []string{wire.CmdInv, wire.CmdGetData, wire.CmdNotFound} {
			checkDecode(t, cmd, p)
			m, err := wire.Decode(cmd, p)
			if err == nil {
				got[i] = m.AppendPayload(nil)
			}
			errs[i] = err
		}
		for i := 1; i < 3; i++ {
			if !bytes.Equal(got[i], got[0]) || (errs[i] == nil) != (errs[0] == nil) {
				t.Fatalf("inv/getdata/notfound disagree: %v / %v / %v", errs[0], errs[1], errs[2])
			}
			if errs[0] != nil {
				a, b := errs[0].(*wire.DecodeError), errs[i].(*wire.DecodeError)
				if a.Offset != b.Offset || a.Err != b.Err {
					t.Fatalf("inv/getdata/notfound disagree: %v / %v", a, b)
				}
			}
		}
	})
}

func FuzzDecodeReject(f *testing.F) {
	f.Fuzz(func(t *testing.T, p []byte) { checkDecode(t, wire.CmdReject, p) })
}

func FuzzDecodeSendCmpct(f *testing.F) {
	f.Fuzz(func(t *testing.T, p []byte) { checkDecode(t, wire.CmdSendCmpct, p) })
}

func FuzzDecodeFeeFilter(f *testing.F) {
	f.Fuzz(func(t *testing.T, p []byte) { checkDecode(t, wire.CmdFeeFilter, p) })
}

// FuzzDecodeEmpty decodes the payload as each message without a body: only
// the empty payload is valid.
func FuzzDecodeEmpty(f *testing.F) {
	f.Fuzz(func(t *testing.T, p []byte) {
		for _, cmd := range []string{wire.CmdVerack, wire.CmdGetAddr, wire.CmdSendAddrV2, wire.CmdWTxIDRelay, wire.CmdSendHeaders} {
			checkDecode(t, cmd, p)
			if _, err := wire.Decode(cmd, p); (err == nil) != (len(p) == 0) {
				t.Fatalf("%s: Decode(%d bytes) = %v", cmd, len(p), err)
			}
		}
	})
}

// FuzzDecode takes any command: known ones get the decoder properties,
// others come back as a *Raw aliasing the payload.
func FuzzDecode(f *testing.F) {
	known := map[string]bool{}
	for _, cmd := range decodedCommands {
		known[cmd] = true
	}
	f.Fuzz(func(t *testing.T, cmd string, p []byte) {
		if known[cmd] {
			checkDecode(t, cmd, p)
			return
		}
		m, err := wire.Decode(cmd, p)
		if err != nil {
			t.Fatalf("Decode(%q) = %v, want a Raw", cmd, err)
		}
		raw, ok := m.(*wire.Raw)
		if !ok || raw.Cmd != cmd || len(raw.Payload) != len(p) || (len(p) > 0 && &raw.Payload[0] != &p[0]) {
			t.Fatalf("Decode(%q) = %#v, want a *Raw aliasing the payload", cmd, m)
		}
		w, err := fuzzDecoder.Decode(cmd, p)
		if err != nil || w.Command() != cmd || !bytes.Equal(w.AppendPayload(nil), p) {
			t.Fatalf("Decoder.Decode(%q) = %#v, %v", cmd, w, err)
		}
	})
}
