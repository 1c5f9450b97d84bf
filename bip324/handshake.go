package bip324

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"syscall"

	"github.com/btcpipe/btcpipe/wire"
)

// DefaultMaxHandshakeDecoys is Config.MaxHandshakeDecoys when unset.
const DefaultMaxHandshakeDecoys = 64

// Config configures one handshake. The zero value (with Magic set) is what
// a node wants: random garbage of random length, no decoys, the default
// limits.
type Config struct {
	// Magic is the network's: it enters the key derivation, so ends on
	// different networks fail to authenticate.
	Magic wire.Magic
	// Garbage is sent after the public key. Nil means random bytes of a
	// random length from 0 to MaxGarbage; a non-nil slice (even empty) is
	// sent as it is and may hold at most MaxGarbage bytes.
	Garbage []byte
	// Decoys lists the contents lengths of decoy packets to send before the
	// version packet.
	Decoys []int
	// MaxContents is the receive limit (Receiver.SetMaxContents); 0 means
	// MaxContents.
	MaxContents uint32
	// MaxHandshakeDecoys caps the decoy packets accepted before the peer's
	// version packet; 0 means DefaultMaxHandshakeDecoys. (The caller's
	// deadline bounds the time; this bounds the work.)
	MaxHandshakeDecoys int
	// Rand is the source of the garbage; nil means crypto/rand. The key
	// always comes from crypto/rand.
	Rand io.Reader

	// keyPair, when set (by tests), replaces NewKeyPair.
	keyPair func() (KeyPair, error)
}

// Session is a completed handshake: the keyed ciphers of both directions,
// the session id, and what was read past the handshake.
type Session struct {
	ID SessionID
	// Send encrypts what this end sends (owned by the writer).
	Send *Sender
	// Recv decrypts what the peer sends, from its first packet after the
	// version packet.
	Recv *Receiver
	// Leftover holds the bytes read from the connection after the peer's
	// version packet: the start of its first packets, to be fed to the
	// framer before anything read later. The caller owns it.
	Leftover []byte
	// PeerVersion is the contents of the peer's version packet (empty for
	// BIP324 as it stands; ignored). The caller owns it.
	PeerVersion []byte
	// PeerGarbage is the length of the garbage the peer sent.
	PeerGarbage int
	// PeerDecoys counts the decoy packets the peer sent in the handshake.
	PeerDecoys int
}

// Initiate runs the initiator's side of the BIP324 handshake over rw, with cfg
// (required; Magic at least):
//
//  1. send a fresh ElligatorSwift public key and the garbage;
//  2. read the peer's 64-byte key (v1 bytes there are ErrV1Peer; a close is
//     ErrHandshakeClosed) and derive the keys;
//  3. send the garbage terminator, the decoys and the version packet, the
//     first of them authenticating our garbage;
//  4. read until the peer's garbage terminator, within MaxGarbage +
//     TerminatorSize bytes (ErrNoGarbageTerminator);
//  5. read and authenticate the peer's packets up to its version packet,
//     skipping decoys; the first authenticates the peer's garbage.
//
// Deadlines are the caller's: set them on the connection; a timeout comes
// back wrapping the connection's error (errors.Is(err,
// os.ErrDeadlineExceeded)). Every error is a *HandshakeError. Memory is
// bounded by the packet limit: a length is checked before its packet is
// read, and the buffer grows only as bytes arrive.
func Initiate(rw io.ReadWriter, cfg *Config) (*Session, error) {
	return handshake(rw, cfg, true)
}

// Respond runs the responder's side of the handshake: it waits for one byte
// that differs from the v1 prefix (magic and "version" padded to 12 bytes;
// a full match is ErrV1Peer), sends its key and garbage, reads the rest of
// the initiator's key (a v1 "version" of another network is ErrV1Peer), and
// then proceeds as Initiate from step 3.
//
// btcpipe dials and does not accept connections: Respond is for tests and
// for the fake v2 peers that tests run. A v1 fallback as responder would
// need the 16 bytes consumed, which it does not return.
func Respond(rw io.ReadWriter, cfg *Config) (*Session, error) {
	return handshake(rw, cfg, false)
}

var versionCommand = [CommandSize]byte{'v', 'e', 'r', 's', 'i', 'o', 'n'}

// hsReader accumulates the peer's bytes: buf[off:] is unconsumed.
type hsReader struct {
	r     io.Reader
	buf   []byte
	off   int
	total int
	empty int // consecutive reads that returned nothing
}

// fill reads until n unconsumed bytes are there, growing the buffer only as
// bytes arrive (at most doubling), so a promised length costs nothing until
// it is sent.
func (h *hsReader) fill(n int) error {
	for len(h.buf)-h.off < n {
		if len(h.buf) == cap(h.buf) {
			if h.off > 0 {
				m := copy(h.buf, h.buf[h.off:])
				h.buf, h.off = h.buf[:m], 0
				continue
			}
			grow := min(max(len(h.buf), 4096), n-len(h.buf))
			nb := make([]byte, len(h.buf), len(h.buf)+grow)
			copy(nb, h.buf)
			h.buf = nb
		}
		k, err := h.r.Read(h.buf[len(h.buf):cap(h.buf)])
		h.buf = h.buf[:len(h.buf)+k]
		h.total += k
		if k == 0 && err == nil {
			if h.empty++; h.empty >= 100 {
				return io.ErrNoProgress
			}
		} else {
			h.empty = 0
		}
		if err != nil {
			if len(h.buf)-h.off >= n {
				return nil
			}
			if errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

func (h *hsReader) bytes() []byte { return h.buf[h.off:] }

func handshake(rw io.ReadWriter, cfg *Config, initiator bool) (*Session, error) {
	h := &hsReader{r: rw, buf: make([]byte, 0, PubKeySize+MaxGarbage+TerminatorSize+Overhead)}
	fail := func(phase string, err error) (*Session, error) {
		if isClosed(err) {
			err = fmt.Errorf("%w: %w", ErrHandshakeClosed, err)
		}
		return nil, &HandshakeError{Initiator: initiator, Phase: phase, Received: h.total, Err: err}
	}
	garbage := cfg.Garbage
	if garbage == nil {
		src := cfg.Rand
		if src == nil {
			src = rand.Reader
		}
		var l [2]byte
		if _, err := io.ReadFull(src, l[:]); err != nil {
			return fail("send key", err)
		}
		garbage = make([]byte, int(binary.LittleEndian.Uint16(l[:]))%(MaxGarbage+1))
		if _, err := io.ReadFull(src, garbage); err != nil {
			return fail("send key", err)
		}
	}
	if len(garbage) > MaxGarbage {
		return fail("send key", ErrGarbageTooLarge)
	}
	newKey := NewKeyPair
	if cfg.keyPair != nil {
		newKey = cfg.keyPair
	}
	magic := cfg.Magic.Bytes()
	v1Prefix := append(magic[:], versionCommand[:]...)

	if !initiator {
		// Wait for a byte that is not the v1 prefix's.
		for {
			if err := h.fill(len(h.bytes()) + 1); err != nil {
				return fail("read key", err)
			}
			got := h.bytes()
			n := min(len(got), len(v1Prefix))
			if !bytes.Equal(got[:n], v1Prefix[:n]) {
				break
			}
			if n == len(v1Prefix) {
				return fail("read key", ErrV1Peer)
			}
		}
	}
	ours, err := newKey()
	if err != nil {
		return fail("send key", err)
	}
	if err := writeAll(rw, append(ours.Pub[:len(ours.Pub):len(ours.Pub)], garbage...)); err != nil {
		return fail("send key", err)
	}
	if err := h.fill(PubKeySize); err != nil {
		if initiator && len(h.bytes()) >= 16 && looksV1(h.bytes(), magic) {
			return fail("read key", ErrV1Peer)
		}
		return fail("read key", err)
	}
	var theirs [PubKeySize]byte
	copy(theirs[:], h.bytes())
	h.off += PubKeySize
	if initiator && looksV1(theirs[:], magic) || !initiator && bytes.Equal(theirs[4:16], versionCommand[:]) {
		return fail("read key", ErrV1Peer)
	}
	secret, err := ECDH(ours, theirs, initiator)
	if err != nil {
		return fail("read key", err)
	}
	keys := DeriveKeys(secret, cfg.Magic)
	clear(secret[:])
	send, recv := keys.Ciphers(initiator)
	sendTerm, recvTerm := keys.Terminators(initiator)
	s := &Session{ID: keys.SessionID, Send: send, Recv: recv}
	keys.Clear()
	if cfg.MaxContents != 0 {
		recv.SetMaxContents(cfg.MaxContents)
	}

	out := append([]byte(nil), sendTerm[:]...)
	aad := garbage
	for _, n := range cfg.Decoys {
		out = send.AppendPacket(out, make([]byte, n), aad, true)
		aad = nil
	}
	out = send.AppendPacket(out, nil, aad, false)
	if err := writeAll(rw, out); err != nil {
		return fail("send terminator", err)
	}

	// The peer's garbage and terminator.
	const window = MaxGarbage + TerminatorSize
	for {
		got := h.bytes()
		if i := bytes.Index(got[:min(len(got), window)], recvTerm[:]); i >= 0 {
			s.PeerGarbage = i
			aad = append([]byte(nil), got[:i]...)
			h.off += i + TerminatorSize
			break
		}
		if len(got) >= window {
			return fail("read garbage", ErrNoGarbageTerminator)
		}
		if err := h.fill(len(got) + 1); err != nil {
			return fail("read garbage", err)
		}
	}

	maxDecoys := cfg.MaxHandshakeDecoys
	if maxDecoys == 0 {
		maxDecoys = DefaultMaxHandshakeDecoys
	}
	for {
		if err := h.fill(LengthSize); err != nil {
			return fail("read version", err)
		}
		n, err := recv.DecryptLength(h.bytes())
		if err != nil {
			return fail("read version", err)
		}
		if err := h.fill(PacketLen(n)); err != nil {
			return fail("read version", err)
		}
		contents, ignore, err := recv.Open(h.bytes()[LengthSize:PacketLen(n)], aad)
		if err != nil {
			return fail("read version", err)
		}
		h.off += PacketLen(n)
		aad = nil
		if !ignore {
			s.PeerVersion = append([]byte{}, contents...)
			break
		}
		if s.PeerDecoys++; s.PeerDecoys > maxDecoys {
			return fail("read version", ErrTooManyDecoys)
		}
	}
	s.Leftover = append([]byte{}, h.bytes()...)
	return s, nil
}

// looksV1 reports whether b starts like a v1 message header: this network's
// magic and a valid command, or any network's "version".
func looksV1(b []byte, magic [4]byte) bool {
	if bytes.Equal(b[4:16], versionCommand[:]) {
		return true
	}
	if !bytes.Equal(b[:4], magic[:]) {
		return false
	}
	cmd := b[4:16]
	n := 0
	for n < len(cmd) && cmd[n] != 0 {
		if cmd[n] < 0x20 || cmd[n] > 0x7e {
			return false
		}
		n++
	}
	for _, c := range cmd[n:] {
		if c != 0 {
			return false
		}
	}
	return n > 0
}

func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.ErrClosedPipe) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED)
}

func writeAll(w io.Writer, b []byte) error {
	n, err := w.Write(b)
	if err == nil && n != len(b) {
		err = io.ErrShortWrite
	}
	return err
}
