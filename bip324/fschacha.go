package bip324

import (
	"encoding/binary"

	"golang.org/x/crypto/chacha20"
	"golang.org/x/crypto/chacha20poly1305"
)

// RekeyInterval is the number of chunks (FSChaCha20) or packets
// (FSChaCha20Poly1305) after which BIP324 replaces a key.
const RekeyInterval = 224

// FSChaCha20 is BIP324's rekeying stream cipher for the 3-byte packet
// lengths: one ChaCha20 keystream is drawn across consecutive chunks, and
// after every RekeyInterval chunks the next 32 keystream bytes become the new
// key, the nonce becomes 4 zero bytes and the 64-bit little-endian count of
// rekeyings, and the block counter starts again at 0.
//
// The zero value is not usable; NewFSChaCha20 keys one. It holds no pointers,
// so a copy is an independent snapshot of the state. It is not safe for
// concurrent use.
type FSChaCha20 struct {
	c      chacha20.Cipher
	chunks uint64
}

// NewFSChaCha20 returns the cipher for the initial key.
func NewFSChaCha20(key [32]byte) FSChaCha20 {
	var f FSChaCha20
	f.rekey(&key)
	clear(key[:])
	return f
}

// rekey installs key with the nonce for the current rekeying count.
func (f *FSChaCha20) rekey(key *[32]byte) {
	var nonce [chacha20.NonceSize]byte
	binary.LittleEndian.PutUint64(nonce[4:], f.chunks/RekeyInterval)
	// NewUnauthenticatedCipher is inlined, so the cipher it returns stays on
	// the stack and this copies it: rekeying allocates nothing.
	c, err := chacha20.NewUnauthenticatedCipher(key[:], nonce[:])
	if err != nil {
		panic("bip324: " + err.Error()) // key and nonce sizes are constants
	}
	f.c = *c
}

// Crypt XORs src with the next len(src) keystream bytes into dst (which may
// be src itself, or must not overlap it) and counts one chunk. BIP324 uses
// chunks of LengthSize bytes. It allocates nothing.
func (f *FSChaCha20) Crypt(dst, src []byte) {
	f.c.XORKeyStream(dst[:len(src)], src)
	f.chunks++
	if f.chunks%RekeyInterval == 0 {
		var key [32]byte
		f.c.XORKeyStream(key[:], key[:])
		f.rekey(&key)
		clear(key[:])
	}
}

// Chunks returns the number of chunks crypted so far.
func (f *FSChaCha20) Chunks() uint64 { return f.chunks }

// PacketKey is the key and nonce of one FSChaCha20Poly1305 message: what a
// verifier on another goroutine needs to authenticate and decrypt one packet
// with OpenWith, independently of the packets around it.
//
// It is secret key material: OpenWith and SealWith clear it after use.
type PacketKey struct {
	Key   [chacha20poly1305.KeySize]byte
	Nonce [chacha20poly1305.NonceSize]byte
}

// FSChaCha20Poly1305 is BIP324's rekeying ChaCha20-Poly1305 AEAD for packet
// contents. Message i uses the nonce LE32(i mod 224) || LE64(i / 224); after
// every RekeyInterval messages the key becomes the first 32 bytes of the
// AEAD encryption of 32 zero bytes under the nonce ff ff ff ff || LE64(i /
// 224), which is ChaCha20 keystream bytes 64 to 95 under that nonce (no
// Poly1305 needed).
//
// One instance serves one direction. The zero value is not usable;
// NewFSChaCha20Poly1305 keys one. It holds no pointers, so a copy is an
// independent snapshot. It is not safe for concurrent use, but the
// PacketKeys it hands out (Next) may be used on any goroutine.
type FSChaCha20Poly1305 struct {
	key     [chacha20poly1305.KeySize]byte
	packets uint64
}

// NewFSChaCha20Poly1305 returns the AEAD for the initial key.
func NewFSChaCha20Poly1305(key [32]byte) FSChaCha20Poly1305 {
	return FSChaCha20Poly1305{key: key}
}

// Packets returns the number of messages sealed or opened so far.
func (f *FSChaCha20Poly1305) Packets() uint64 { return f.packets }

// Next returns the key and nonce of the next message and advances past it,
// rekeying when an interval ends. It allocates nothing.
func (f *FSChaCha20Poly1305) Next() PacketKey {
	var k PacketKey
	k.Key = f.key
	binary.LittleEndian.PutUint32(k.Nonce[0:4], uint32(f.packets%RekeyInterval))
	binary.LittleEndian.PutUint64(k.Nonce[4:12], f.packets/RekeyInterval)
	f.packets++
	if f.packets%RekeyInterval == 0 {
		var nonce [chacha20.NonceSize]byte
		nonce[0], nonce[1], nonce[2], nonce[3] = 0xff, 0xff, 0xff, 0xff
		copy(nonce[4:], k.Nonce[4:])
		c, err := chacha20.NewUnauthenticatedCipher(f.key[:], nonce[:])
		if err != nil {
			panic("bip324: " + err.Error())
		}
		c.SetCounter(1) // block 0 is the Poly1305 key; the text starts at block 1
		clear(f.key[:])
		c.XORKeyStream(f.key[:], f.key[:])
	}
	return k
}

// Seal appends the encryption of plaintext with aad to dst and advances. To
// encrypt in place, pass plaintext[:0] as dst (with 16 bytes of spare
// capacity); otherwise dst's spare capacity must not overlap plaintext.
func (f *FSChaCha20Poly1305) Seal(dst, plaintext, aad []byte) []byte {
	k := f.Next()
	return SealWith(&k, dst, plaintext, aad)
}

// Open appends the decryption of ciphertext with aad to dst and advances
// (also on failure: after a failure the direction is finished). To decrypt
// in place pass ciphertext[:0] as dst. It returns ErrBadTag if the tag does
// not match.
func (f *FSChaCha20Poly1305) Open(dst, ciphertext, aad []byte) ([]byte, error) {
	k := f.Next()
	return openRaw(&k, dst, ciphertext, aad)
}

// SealWith appends the ChaCha20-Poly1305 encryption of plaintext under k to
// dst, and clears k. It allocates nothing when dst has the capacity.
func SealWith(k *PacketKey, dst, plaintext, aad []byte) []byte {
	a, err := chacha20poly1305.New(k.Key[:]) // inlined: the AEAD stays on the stack
	if err != nil {
		panic("bip324: " + err.Error())
	}
	out := a.Seal(dst, k.Nonce[:], plaintext, aad)
	clear(k.Key[:])
	return out
}

func openRaw(k *PacketKey, dst, ciphertext, aad []byte) ([]byte, error) {
	a, err := chacha20poly1305.New(k.Key[:])
	if err != nil {
		panic("bip324: " + err.Error())
	}
	out, err := a.Open(dst, k.Nonce[:], ciphertext, aad)
	clear(k.Key[:])
	if err != nil {
		return nil, ErrBadTag
	}
	return out, nil
}
