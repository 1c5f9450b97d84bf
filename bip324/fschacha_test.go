package bip324

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/btcsuite/btcd/v2transport"
)

func randKey(t testing.TB) (k [32]byte) {
	t.Helper()
	if _, err := rand.Read(k[:]); err != nil {
		t.Fatal(err)
	}
	return k
}

// TestFSChaCha20MatchesBtcd crypts 3-byte chunks across five rekeyings with
// ours and with btcd's v2transport.FSChaCha20, which follows the BIP's
// pseudocode, and compares every chunk.
func TestFSChaCha20MatchesBtcd(t *testing.T) {
	key := randKey(t)
	ours := NewFSChaCha20(key)
	theirs, err := v2transport.NewFSChaCha20(append([]byte(nil), key[:]...))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5*RekeyInterval + 7 {
		chunk := []byte{byte(i), byte(i >> 8), 0x5a}
		want, err := theirs.Crypt(chunk)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 3)
		ours.Crypt(got, chunk)
		if !bytes.Equal(got, want) {
			t.Fatalf("chunk %d: got %x, want %x", i, got, want)
		}
	}
	if got, want := ours.Chunks(), uint64(5*RekeyInterval+7); got != want {
		t.Errorf("Chunks() = %d, want %d", got, want)
	}
}

// TestFSChaCha20Poly1305MatchesBtcd seals across five rekeyings with ours
// and btcd's and compares, then opens each with a fresh copy of ours.
func TestFSChaCha20Poly1305MatchesBtcd(t *testing.T) {
	key := randKey(t)
	ours := NewFSChaCha20Poly1305(key)
	opener := NewFSChaCha20Poly1305(key)
	theirs, err := v2transport.NewFSChaCha20Poly1305(append([]byte(nil), key[:]...))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5*RekeyInterval + 3 {
		pt := bytes.Repeat([]byte{byte(i)}, i%50)
		aad := []byte{byte(i % 3)}
		want, err := theirs.Encrypt(aad, pt)
		if err != nil {
			t.Fatal(err)
		}
		got := ours.Seal(nil, pt, aad)
		if !bytes.Equal(got, want) {
			t.Fatalf("message %d: got %x, want %x", i, got, want)
		}
		back, err := opener.Open(got[:0], got, aad)
		if err != nil || !bytes.Equal(back, pt) {
			t.Fatalf("message %d: Open = %x, %v, want %x", i, back, err, pt)
		}
	}
}

// TestFSChaCha20Poly1305Nonces checks the nonce layout and that the key
// changes exactly at each rekeying.
func TestFSChaCha20Poly1305Nonces(t *testing.T) {
	f := NewFSChaCha20Poly1305(randKey(t))
	var prev PacketKey
	for i := range 3 * RekeyInterval {
		k := f.Next()
		wantNonce := [12]byte{byte(i % RekeyInterval), 0, 0, 0, byte(i / RekeyInterval)}
		if k.Nonce != wantNonce {
			t.Fatalf("packet %d: nonce %x, want %x", i, k.Nonce, wantNonce)
		}
		if i > 0 && (k.Key != prev.Key) != (i%RekeyInterval == 0) {
			t.Fatalf("packet %d: key changed = %v, want %v", i, k.Key != prev.Key, i%RekeyInterval == 0)
		}
		prev = k
	}
}

// TestOpenBadTag flips each byte of a sealed packet in turn: every flip is
// ErrBadTag.
func TestOpenBadTag(t *testing.T) {
	k := Keys{InitiatorL: randKey(t), InitiatorP: randKey(t)}
	send, _ := k.Ciphers(true)
	_, recv0 := k.Ciphers(false)
	pkt := send.AppendPacket(nil, []byte("hello"), []byte("garbage"), false)
	for i := LengthSize; i < len(pkt); i++ {
		recv := *recv0
		bad := bytes.Clone(pkt)
		bad[i] ^= 0x01
		if _, err := recv.DecryptLength(bad); err != nil {
			t.Fatal(err)
		}
		if _, _, err := recv.Open(bad[LengthSize:], []byte("garbage")); !errors.Is(err, ErrBadTag) {
			t.Errorf("byte %d flipped: err %v, want ErrBadTag", i, err)
		}
	}
	recv := *recv0
	recv.DecryptLength(pkt)
	if _, _, err := recv.Open(bytes.Clone(pkt[LengthSize:]), []byte("garbagE")); !errors.Is(err, ErrBadTag) {
		t.Errorf("wrong aad: err %v, want ErrBadTag", err)
	}
	recv = *recv0
	recv.DecryptLength(pkt)
	got, ignore, err := recv.Open(bytes.Clone(pkt[LengthSize:]), []byte("garbage"))
	if err != nil || string(got) != "hello" || ignore {
		t.Errorf("intact packet: %q, %v, %v", got, ignore, err)
	}
}

// TestDecryptLengthLimit: a length over the limit is refused, and the limit
// is settable up to MaxPacketContents.
func TestDecryptLengthLimit(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limit  uint32 // 0: default
		length int
		ok     bool
	}{
		{"default at limit", 0, MaxContents, true},
		{"default over limit", 0, MaxContents + 1, false},
		{"lowered", 1000, 1001, false},
		{"lowered at limit", 1000, 1000, true},
		{"raised past the field", MaxPacketContents + 5, MaxPacketContents, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := Keys{InitiatorL: randKey(t)}
			send, _ := k.Ciphers(true)
			_, recv := k.Ciphers(false)
			if tc.limit != 0 {
				recv.SetMaxContents(tc.limit)
			}
			var hdr [LengthSize]byte
			l := [3]byte{byte(tc.length), byte(tc.length >> 8), byte(tc.length >> 16)}
			send.length.Crypt(hdr[:], l[:])
			n, err := recv.DecryptLength(hdr[:])
			if int(n) != tc.length {
				t.Errorf("length %d, want %d", n, tc.length)
			}
			if tc.ok != (err == nil) || !tc.ok && !errors.Is(err, ErrPacketTooLarge) {
				t.Errorf("err %v, want ok=%v or ErrPacketTooLarge", err, tc.ok)
			}
		})
	}
	var r Receiver
	if _, err := r.DecryptLength([]byte{1, 2}); !errors.Is(err, ErrShortPacket) {
		t.Errorf("2-byte header: %v, want ErrShortPacket", err)
	}
}

// TestNextPacketKeyMatchesOpen: opening with the handed-out keys, in any
// order, gives what Open gives in order.
func TestNextPacketKeyMatchesOpen(t *testing.T) {
	k := Keys{InitiatorL: randKey(t), InitiatorP: randKey(t)}
	send, _ := k.Ciphers(true)
	_, recv := k.Ciphers(false)
	const n = 3*RekeyInterval + 1
	pkts := make([][]byte, n)
	keys := make([]PacketKey, n)
	for i := range pkts {
		pkts[i] = send.AppendPacket(nil, bytes.Repeat([]byte{byte(i)}, i%40), nil, i%5 == 0)
		if _, err := recv.DecryptLength(pkts[i]); err != nil {
			t.Fatal(err)
		}
		keys[i] = recv.NextPacketKey()
	}
	for i := n - 1; i >= 0; i-- { // backwards
		got, ignore, err := OpenWith(&keys[i], pkts[i][LengthSize:], nil)
		if err != nil || !bytes.Equal(got, bytes.Repeat([]byte{byte(i)}, i%40)) || ignore != (i%5 == 0) {
			t.Fatalf("packet %d: %x %v %v", i, got, ignore, err)
		}
		if keys[i].Key != ([32]byte{}) {
			t.Fatalf("packet %d: OpenWith left the key in place", i)
		}
	}
	if _, _, err := OpenWith(&PacketKey{}, make([]byte, TagSize), nil); !errors.Is(err, ErrShortPacket) {
		t.Errorf("16 sealed bytes: %v, want ErrShortPacket", err)
	}
}
