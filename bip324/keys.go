package bip324

import (
	"crypto/hkdf"
	"crypto/sha256"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ellswift"

	"github.com/btcpipe/btcpipe/wire"
)

// Handshake sizes.
const (
	// PubKeySize is an ElligatorSwift-encoded public key.
	PubKeySize = 64
	// MaxGarbage is the most garbage either side may send after its key.
	MaxGarbage = 4095
	// TerminatorSize is a garbage terminator.
	TerminatorSize = 16
)

// Keys is what both ends derive from the ECDH secret and the network magic
// (BIP324 "initialize_v2_transport"): four cipher keys, the two garbage
// terminators and the session id.
type Keys struct {
	SessionID              SessionID
	InitiatorL, InitiatorP [32]byte
	ResponderL, ResponderP [32]byte
	InitiatorTerminator    [TerminatorSize]byte
	ResponderTerminator    [TerminatorSize]byte
}

// DeriveKeys runs HKDF-SHA256 with the salt "bitcoin_v2_shared_secret" and
// the magic's four wire bytes over the 32-byte ECDH secret (see ECDH).
func DeriveKeys(secret [32]byte, magic wire.Magic) *Keys {
	m := magic.Bytes()
	salt := append([]byte("bitcoin_v2_shared_secret"), m[:]...)
	prk, err := hkdf.Extract(sha256.New, secret[:], salt)
	if err != nil {
		panic("bip324: " + err.Error()) // cannot fail for SHA-256
	}
	var k Keys
	expand := func(dst []byte, info string) {
		b, err := hkdf.Expand(sha256.New, prk, info, len(dst))
		if err != nil {
			panic("bip324: " + err.Error())
		}
		copy(dst, b)
		clear(b)
	}
	expand(k.SessionID[:], "session_id")
	expand(k.InitiatorL[:], "initiator_L")
	expand(k.InitiatorP[:], "initiator_P")
	expand(k.ResponderL[:], "responder_L")
	expand(k.ResponderP[:], "responder_P")
	var terms [2 * TerminatorSize]byte
	expand(terms[:], "garbage_terminators")
	copy(k.InitiatorTerminator[:], terms[:TerminatorSize])
	copy(k.ResponderTerminator[:], terms[TerminatorSize:])
	clear(prk)
	return &k
}

// Ciphers returns the Sender and Receiver of one end: an initiator sends
// with the initiator keys and receives with the responder keys, a responder
// the other way round.
func (k *Keys) Ciphers(initiator bool) (*Sender, *Receiver) {
	if initiator {
		return NewSender(k.InitiatorL, k.InitiatorP), NewReceiver(k.ResponderL, k.ResponderP)
	}
	return NewSender(k.ResponderL, k.ResponderP), NewReceiver(k.InitiatorL, k.InitiatorP)
}

// Terminators returns the garbage terminator an end sends and the one it
// expects.
func (k *Keys) Terminators(initiator bool) (send, recv [TerminatorSize]byte) {
	if initiator {
		return k.InitiatorTerminator, k.ResponderTerminator
	}
	return k.ResponderTerminator, k.InitiatorTerminator
}

// Clear zeroes the cipher keys (the session id and terminators stay).
func (k *Keys) Clear() {
	clear(k.InitiatorL[:])
	clear(k.InitiatorP[:])
	clear(k.ResponderL[:])
	clear(k.ResponderP[:])
}

// KeyPair is an ephemeral secp256k1 key and its 64-byte ElligatorSwift
// encoding.
type KeyPair struct {
	Priv *btcec.PrivateKey
	Pub  [PubKeySize]byte
}

// NewKeyPair generates a random key and a uniformly sampled encoding of its
// public key (btcec's ellswift.EllswiftCreate, from crypto/rand).
func NewKeyPair() (KeyPair, error) {
	priv, pub, err := ellswift.EllswiftCreate()
	return KeyPair{Priv: priv, Pub: pub}, err
}

// ECDH computes BIP324's shared secret: the tagged hash
// "bip324_ellswift_xonly_ecdh" of the initiator's and the responder's
// encodings, in that order, and the x coordinate of the X-only ECDH point.
func ECDH(ours KeyPair, theirs [PubKeySize]byte, initiator bool) ([32]byte, error) {
	h, err := ellswift.V2Ecdh(ours.Priv, theirs, ours.Pub, initiator)
	if err != nil {
		return [32]byte{}, err
	}
	return *h, nil
}
