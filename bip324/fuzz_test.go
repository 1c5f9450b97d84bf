package bip324

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
)

// vectorReceiver returns the Receiver that decrypts packet vector row's
// ciphertext (its peer's), with the limit raised to the field's maximum.
func vectorReceiver(t testing.TB, row int) (*Receiver, []byte, []byte) {
	v := readCSV(t, "packet_encoding_test_vectors.csv")[row]
	priv, _ := btcec.PrivKeyFromBytes(unhex(t, v["in_priv_ours"]))
	var ours, theirs [64]byte
	copy(ours[:], unhex(t, v["in_ellswift_ours"]))
	copy(theirs[:], unhex(t, v["in_ellswift_theirs"]))
	initiator := v["in_initiating"] == "1"
	secret, err := ECDH(KeyPair{Priv: priv, Pub: ours}, theirs, initiator)
	if err != nil {
		t.Fatal(err)
	}
	_, recv := DeriveKeys(secret, magic).Ciphers(!initiator)
	return recv, unhex(t, v["in_aad"]), unhex(t, v["out_ciphertext"])
}

// FuzzReceive feeds a byte stream to the packet decoder (lengths, in-place
// Open, message types) keyed like packet vector 3 (in_idx 0), seeded with
// that vector's ciphertext and aad: it must never panic, never accept a
// length over the limit, and stop at the first error.
func FuzzReceive(f *testing.F) {
	r0, aad, ct := vectorReceiver(f, 2)
	check := *r0
	if n, err := check.DecryptLength(ct); err != nil || PacketLen(n) != len(ct) {
		f.Fatalf("seed: length %d, %v", n, err)
	}
	if _, _, err := check.Open(bytes.Clone(ct[LengthSize:]), aad); err != nil {
		f.Fatalf("seed does not authenticate: %v", err)
	}
	f.Add(aad, ct)
	f.Add([]byte{}, []byte{0xff, 0xff, 0xff})
	f.Add([]byte{}, ct[:LengthSize])
	f.Fuzz(func(t *testing.T, aad, stream []byte) {
		r := *r0
		r.SetMaxContents(1 << 16)
		for len(stream) >= LengthSize {
			n, err := r.DecryptLength(stream)
			if err != nil {
				if !errors.Is(err, ErrPacketTooLarge) || n <= r.MaxContents() {
					t.Fatalf("DecryptLength: %d, %v", n, err)
				}
				return
			}
			if len(stream) < PacketLen(n) {
				return
			}
			c, ignore, err := r.Open(stream[LengthSize:PacketLen(n)], aad)
			if err != nil {
				if !errors.Is(err, ErrBadTag) {
					t.Fatalf("Open: %v", err)
				}
				return
			}
			if len(c) != int(n) {
				t.Fatalf("contents %d bytes, length said %d", len(c), n)
			}
			if !ignore {
				DecodeContents(c)
			}
			stream, aad = stream[PacketLen(n):], nil
		}
	})
}

// FuzzPacketRoundTrip: whatever is sent comes back, and any one-byte change
// to the sealed part is ErrBadTag.
func FuzzPacketRoundTrip(f *testing.F) {
	f.Add([]byte("hello"), []byte("aad"), false, uint16(0))
	f.Add([]byte{}, []byte{}, true, uint16(7))
	k := Keys{InitiatorL: [32]byte{1}, InitiatorP: [32]byte{2}}
	f.Fuzz(func(t *testing.T, contents, aad []byte, ignore bool, flip uint16) {
		send, _ := k.Ciphers(true)
		_, recv := k.Ciphers(false)
		pkt := send.AppendPacket(nil, contents, aad, ignore)
		n, err := recv.DecryptLength(pkt)
		if err != nil || int(n) != len(contents) || len(pkt) != PacketLen(n) {
			t.Fatalf("length %d, %v; want %d", n, err, len(contents))
		}
		saved := *recv
		bad := bytes.Clone(pkt)
		got, gotIgnore, err := recv.Open(pkt[LengthSize:], aad)
		if err != nil || !bytes.Equal(got, contents) || gotIgnore != ignore {
			t.Fatalf("Open: %x %v %v", got, gotIgnore, err)
		}
		i := LengthSize + int(flip)%(len(bad)-LengthSize)
		bad[i] ^= 0x80
		if _, _, err := saved.Open(bad[LengthSize:], aad); !errors.Is(err, ErrBadTag) {
			t.Fatalf("byte %d flipped: %v, want ErrBadTag", i, err)
		}
	})
}

// FuzzDecodeContents: never panics; what decodes re-encodes to contents
// that decode the same.
func FuzzDecodeContents(f *testing.F) {
	for _, s := range []string{"\x12abcdefgh", "\x00version\x00\x00\x00\x00\x00xyz", "\x00", "\x1d", "\x25"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, contents []byte) {
		cmd, payload, err := DecodeContents(contents)
		if err != nil {
			return
		}
		again, err := AppendContents(nil, cmd, payload)
		if err != nil {
			t.Fatalf("decoded %q but cannot encode it: %v", cmd, err)
		}
		cmd2, payload2, err := DecodeContents(again)
		if err != nil || cmd2 != cmd || !bytes.Equal(payload2, payload) {
			t.Fatalf("%q %x re-decodes as %q %x %v", cmd, payload, cmd2, payload2, err)
		}
	})
}

// FuzzInitiate feeds arbitrary peer bytes to the initiator, with the fixed
// keys and garbage of the recorded transcript (the seed), so mutations of a
// real handshake get past the key exchange. It must end with a session or
// an error, never a panic, whatever the bytes.
func FuzzInitiate(f *testing.F) {
	ci, cr, toInit, toResp, _ := transcripts(f)
	f.Add(toInit, false)
	f.Add(toResp, true)
	for _, v := range readCSV(f, "ellswift_decode_test_vectors.csv")[:8] {
		f.Add(unhex(f, v["ellswift"]), false)
	}
	f.Add(v1Version(magic), true)
	f.Fuzz(func(t *testing.T, input []byte, responder bool) {
		run, cfg := Initiate, ci
		if responder {
			run, cfg = Respond, cr
		}
		s, err := run(readWriter{bytes.NewReader(input), io.Discard}, cfg)
		if (s == nil) == (err == nil) {
			t.Fatalf("session %v and error %v", s, err)
		}
		var he *HandshakeError
		if err != nil && !errors.As(err, &he) {
			t.Fatalf("error %v is not a *HandshakeError", err)
		}
	})
}
