package bip324

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"testing/iotest"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"

	"github.com/btcpipe/btcpipe/wire"
)

var magic = wire.Mainnet.Magic

// vectorKeyPair returns the key pair ("ours") of a packet encoding vector,
// for handshakes that must come out the same every time.
func vectorKeyPair(t testing.TB, row int) func() (KeyPair, error) {
	v := readCSV(t, "packet_encoding_test_vectors.csv")[row]
	priv, _ := btcec.PrivKeyFromBytes(unhex(t, v["in_priv_ours"]))
	var kp KeyPair
	kp.Priv = priv
	copy(kp.Pub[:], unhex(t, v["in_ellswift_ours"]))
	return func() (KeyPair, error) { return kp, nil }
}

type result struct {
	s   *Session
	err error
}

// handshakePair runs Initiate on a and Respond on b at once.
func handshakePair(a, b io.ReadWriter, ci, cr *Config) (init, resp result) {
	ch := make(chan result, 1)
	go func() {
		s, err := Respond(b, cr)
		ch <- result{s, err}
	}()
	s, err := Initiate(a, ci)
	init = result{s, err}
	resp = <-ch
	return init, resp
}

func randBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// exchange sends n random messages (and decoys) from s over w and checks
// that r's packetReader gets them, in order, without the decoys.
func exchange(t *testing.T, from *Session, w io.Writer, to *packetReader, n int) {
	t.Helper()
	type msg struct {
		cmd     string
		payload []byte
	}
	cmds := []string{"ping", "pong", "inv", "sendcmpct", "feature", "version", "verack", "tx", "addrv2", "xyzzy"}
	msgs := make([]msg, n)
	for i := range msgs {
		size := i * 7919 % 600
		if i%97 == 0 {
			size = 70_000 + i
		}
		msgs[i] = msg{cmds[i%len(cmds)], randBytes(t, size)}
	}
	errc := make(chan error, 1)
	go func() {
		var buf []byte
		for i, m := range msgs {
			var err error
			buf = buf[:0]
			if i%5 == 0 {
				buf = from.Send.AppendPacket(buf, randBytes(t, i%300), nil, true)
			}
			if buf, err = from.Send.AppendMessage(buf, m.cmd, m.payload); err != nil {
				errc <- err
				return
			}
			if _, err = w.Write(buf); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for i, m := range msgs {
		var contents []byte
		for {
			c, ignore, err := to.next()
			if err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
			if !ignore {
				contents = c
				break
			}
		}
		cmd, payload, err := DecodeContents(contents)
		if err != nil || cmd != m.cmd || !bytes.Equal(payload, m.payload) {
			t.Fatalf("message %d: got %q (%d bytes) %v, want %q (%d bytes)", i, cmd, len(payload), err, m.cmd, len(m.payload))
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// TestHandshake runs our initiator against our responder with various
// garbage and decoys, then exchanges messages both ways at once.
func TestHandshake(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		initGarbage, respGarbg []byte
		initDecoys, respDecoys []int
	}{
		{name: "random garbage"},
		{name: "no garbage", initGarbage: []byte{}, respGarbg: []byte{}},
		{name: "max garbage", initGarbage: make([]byte, MaxGarbage), respGarbg: bytes.Repeat([]byte{7}, MaxGarbage)},
		{name: "decoys", initDecoys: []int{0, 10, 3000}, respDecoys: []int{1, 70_000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := bufPipe(t)
			ci := &Config{Magic: magic, Garbage: tc.initGarbage, Decoys: tc.initDecoys}
			cr := &Config{Magic: magic, Garbage: tc.respGarbg, Decoys: tc.respDecoys}
			init, resp := handshakePair(a, b, ci, cr)
			if init.err != nil || resp.err != nil {
				t.Fatalf("initiator: %v; responder: %v", init.err, resp.err)
			}
			if init.s.ID != resp.s.ID || init.s.ID == (SessionID{}) {
				t.Fatalf("session ids %s and %s", init.s.ID, resp.s.ID)
			}
			if tc.respGarbg != nil && init.s.PeerGarbage != len(tc.respGarbg) {
				t.Errorf("initiator saw %d bytes of garbage, want %d", init.s.PeerGarbage, len(tc.respGarbg))
			}
			if tc.initGarbage != nil && resp.s.PeerGarbage != len(tc.initGarbage) {
				t.Errorf("responder saw %d bytes of garbage, want %d", resp.s.PeerGarbage, len(tc.initGarbage))
			}
			if init.s.PeerDecoys != len(tc.respDecoys) || resp.s.PeerDecoys != len(tc.initDecoys) {
				t.Errorf("decoys seen: %d and %d, want %d and %d", init.s.PeerDecoys, resp.s.PeerDecoys, len(tc.respDecoys), len(tc.initDecoys))
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				exchange(t, resp.s, b, newPacketReader(init.s, a), 300)
			}()
			exchange(t, init.s, a, newPacketReader(resp.s, b), 300)
			<-done
		})
	}
}

// TestHandshakeWrongNetwork: the magic enters the keys, so ends on
// different networks never see each other's terminator.
func TestHandshakeWrongNetwork(t *testing.T) {
	a, b := bufPipe(t)
	g := make([]byte, MaxGarbage) // so each end sends more than the terminator window
	init, resp := handshakePair(a, b, &Config{Magic: magic, Garbage: g}, &Config{Magic: wire.Testnet3.Magic, Garbage: g})
	if !errors.Is(init.err, ErrNoGarbageTerminator) || !errors.Is(resp.err, ErrNoGarbageTerminator) {
		t.Fatalf("initiator: %v; responder: %v; want ErrNoGarbageTerminator", init.err, resp.err)
	}
}

// fakeResponder plays a hostile responder on c: it reads the initiator's
// key, sends its own key and garbage, derives the keys, and then writes
// what tail returns (a well-behaved one returns terminator + version).
func fakeResponder(t *testing.T, c io.ReadWriter, garbage []byte, tail func(send *Sender, term [TerminatorSize]byte) []byte) chan error {
	errc := make(chan error, 1)
	go func() {
		errc <- func() error {
			var theirs [PubKeySize]byte
			if _, err := io.ReadFull(c, theirs[:]); err != nil {
				return err
			}
			kp, err := NewKeyPair()
			if err != nil {
				return err
			}
			if _, err := c.Write(append(kp.Pub[:], garbage...)); err != nil {
				return err
			}
			secret, err := ECDH(kp, theirs, false)
			if err != nil {
				return err
			}
			keys := DeriveKeys(secret, magic)
			send, _ := keys.Ciphers(false)
			term, _ := keys.Terminators(false)
			_, err = c.Write(tail(send, term))
			return err
		}()
	}()
	return errc
}

// initiate runs Initiate on a with a safety deadline.
func initiate(t *testing.T, a net.Conn, cfg *Config) (*Session, error) {
	t.Helper()
	a.SetReadDeadline(time.Now().Add(10 * time.Second))
	if cfg == nil {
		cfg = &Config{Magic: magic}
	}
	return Initiate(a, cfg)
}

// TestHandshakeHostile runs the initiator against responders that break
// the protocol in one way each.
func TestHandshakeHostile(t *testing.T) {
	version := func(s *Sender, term [TerminatorSize]byte, aad []byte) []byte {
		return s.AppendPacket(term[:], nil, aad, false)
	}
	garbage := []byte("some garbage")
	for _, tc := range []struct {
		name    string
		garbage []byte
		tail    func(s *Sender, term [TerminatorSize]byte) []byte
		cfg     *Config
		want    error // nil: success
		phase   string
	}{
		{name: "well behaved", garbage: garbage, tail: func(s *Sender, term [16]byte) []byte { return version(s, term, garbage) }},
		{name: "garbage 4095 then terminator", garbage: make([]byte, MaxGarbage),
			tail: func(s *Sender, term [16]byte) []byte { return version(s, term, make([]byte, MaxGarbage)) }},
		{name: "garbage 4096 then terminator", garbage: make([]byte, MaxGarbage),
			tail: func(s *Sender, term [16]byte) []byte {
				return append([]byte{0}, version(s, term, nil)...) // one garbage byte too many
			}, want: ErrNoGarbageTerminator, phase: "read garbage"},
		{name: "no terminator", garbage: make([]byte, MaxGarbage),
			tail: func(s *Sender, term [16]byte) []byte { return make([]byte, 200) }, want: ErrNoGarbageTerminator, phase: "read garbage"},
		{name: "length over the limit", garbage: garbage,
			tail: func(s *Sender, term [16]byte) []byte {
				n := MaxContents + 1
				l := []byte{byte(n), byte(n >> 8), byte(n >> 16)}
				s.length.Crypt(l, l)
				return append(term[:], l...) // and nothing more: refused before the packet is read
			}, want: ErrPacketTooLarge, phase: "read version"},
		{name: "bad tag", garbage: garbage,
			tail: func(s *Sender, term [16]byte) []byte {
				p := version(s, term, garbage)
				p[len(p)-1] ^= 1
				return p
			}, want: ErrBadTag, phase: "read version"},
		{name: "garbage not authenticated", garbage: garbage,
			tail: func(s *Sender, term [16]byte) []byte { return version(s, term, nil) }, want: ErrBadTag},
		{name: "garbage authenticated on the second packet", garbage: garbage,
			tail: func(s *Sender, term [16]byte) []byte {
				p := s.AppendPacket(term[:], nil, nil, true)
				return s.AppendPacket(p, nil, garbage, false)
			}, want: ErrBadTag},
		{name: "64 decoys", garbage: garbage,
			tail: func(s *Sender, term [16]byte) []byte {
				p := s.AppendPacket(term[:], make([]byte, 100), garbage, true)
				for range 63 {
					p = s.AppendPacket(p, make([]byte, 100), nil, true)
				}
				return s.AppendPacket(p, nil, nil, false)
			}},
		{name: "decoy flood", garbage: garbage,
			tail: func(s *Sender, term [16]byte) []byte {
				p := s.AppendPacket(term[:], make([]byte, 100), garbage, true)
				for range 1000 {
					p = s.AppendPacket(p, make([]byte, 100), nil, true)
				}
				return p
			}, want: ErrTooManyDecoys, phase: "read version"},
		{name: "decoy flood within a raised cap", garbage: garbage, cfg: &Config{Magic: magic, MaxHandshakeDecoys: 1001},
			tail: func(s *Sender, term [16]byte) []byte {
				p := s.AppendPacket(term[:], make([]byte, 100), garbage, true)
				for range 1000 {
					p = s.AppendPacket(p, make([]byte, 100), nil, true)
				}
				return s.AppendPacket(p, nil, nil, false)
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := bufPipe(t)
			errc := fakeResponder(t, b, tc.garbage, tc.tail)
			s, err := initiate(t, a, tc.cfg)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("err %v, want success", err)
				}
				if s.PeerGarbage != len(tc.garbage) {
					t.Errorf("peer garbage %d, want %d", s.PeerGarbage, len(tc.garbage))
				}
			} else {
				if !errors.Is(err, tc.want) {
					t.Fatalf("err %v, want %v", err, tc.want)
				}
				var he *HandshakeError
				if !errors.As(err, &he) || !he.Initiator || tc.phase != "" && he.Phase != tc.phase {
					t.Errorf("err %#v, want a *HandshakeError in phase %q", err, tc.phase)
				}
				if FallBackToV1(err) {
					t.Errorf("FallBackToV1(%v) = true", err)
				}
			}
			if err := <-errc; err != nil {
				t.Errorf("fake responder: %v", err)
			}
		})
	}
}

// v1Version is a v1 version frame as a v1 node sends it.
func v1Version(m wire.Magic) []byte {
	return wire.AppendFrame(nil, m, "version", make([]byte, 102))
}

// TestHandshakeV1Peer: v1 bytes where v2 was expected, in both roles.
func TestHandshakeV1Peer(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply []byte
		close bool
	}{
		{"v1 version", v1Version(magic), false},
		{"v1 version of another network", v1Version(wire.Testnet4.Magic), false},
		{"v1 verack, then close", wire.AppendFrame(nil, magic, "verack", nil), true},
		{"v1 reject, then close", wire.AppendFrame(nil, magic, "reject", []byte("\x07version\x01")), true},
	} {
		t.Run("initiator/"+tc.name, func(t *testing.T) {
			a, b := bufPipe(t)
			go func() {
				io.ReadFull(b, make([]byte, PubKeySize))
				b.Write(tc.reply)
				if tc.close {
					b.CloseAfterFlush()
				}
			}()
			_, err := initiate(t, a, nil)
			if !errors.Is(err, ErrV1Peer) || !FallBackToV1(err) {
				t.Fatalf("err %v, want ErrV1Peer and a fallback", err)
			}
		})
	}
	for _, tc := range []struct {
		name  string
		input []byte
	}{
		{"v1 version", v1Version(magic)},
		{"v1 version of another network", v1Version(wire.Signet.Magic)},
	} {
		t.Run("responder/"+tc.name, func(t *testing.T) {
			a, b := bufPipe(t)
			a.Write(tc.input)
			b.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err := Respond(b, &Config{Magic: magic})
			if !errors.Is(err, ErrV1Peer) {
				t.Fatalf("err %v, want ErrV1Peer", err)
			}
		})
	}
}

// TestHandshakeClosed: a peer that closes during the handshake; only a
// close before any byte asks for the v1 fallback.
func TestHandshakeClosed(t *testing.T) {
	for _, tc := range []struct {
		name     string
		send     int
		fallback bool
	}{
		{"before any byte", 0, true},
		{"after 30 bytes", 30, false},
		{"after its key and some garbage", 100, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := bufPipe(t)
			go func() {
				io.ReadFull(b, make([]byte, PubKeySize))
				b.Write(randBytes(t, tc.send))
				b.CloseAfterFlush()
			}()
			_, err := initiate(t, a, nil)
			var he *HandshakeError
			if !errors.Is(err, ErrHandshakeClosed) || !errors.As(err, &he) || he.Received != tc.send {
				t.Fatalf("err %v, want ErrHandshakeClosed after %d bytes", err, tc.send)
			}
			if FallBackToV1(err) != tc.fallback {
				t.Errorf("FallBackToV1 = %v, want %v", !tc.fallback, tc.fallback)
			}
		})
	}
}

// TestHandshakeStall: a peer that stops sending; the caller's deadline ends
// the handshake with a timeout error, cleanly.
func TestHandshakeStall(t *testing.T) {
	for _, tc := range []struct {
		name  string
		send  int
		phase string
	}{
		{"before its key", 0, "read key"},
		{"inside its key", 40, "read key"},
		{"in its garbage", 64 + 100, "read garbage"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := bufPipe(t)
			go func() {
				io.ReadFull(b, make([]byte, PubKeySize))
				b.Write(randBytes(t, tc.send))
			}()
			a.SetReadDeadline(time.Now().Add(150 * time.Millisecond))
			start := time.Now()
			_, err := Initiate(a, &Config{Magic: magic})
			var ne net.Error
			if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("err %v, want a timeout", err)
			}
			var he *HandshakeError
			if !errors.As(err, &he) || he.Phase != tc.phase || he.Received != tc.send {
				t.Errorf("err %v, want phase %q after %d bytes", err, tc.phase, tc.send)
			}
			if FallBackToV1(err) || errors.Is(err, ErrHandshakeClosed) {
				t.Errorf("a timeout reads as a close: %v", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("returned after %v", d)
			}
		})
	}
}

// recorder keeps the bytes read through it.
type recorder struct {
	io.ReadWriter
	got []byte
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.ReadWriter.Read(p)
	r.got = append(r.got, p[:n]...)
	return n, err
}

type readWriter struct {
	io.Reader
	io.Writer
}

// transcripts runs a deterministic handshake (fixed keys and garbage) and
// returns the bytes each end read, and the session id.
func transcripts(t testing.TB) (ci, cr *Config, toInit, toResp []byte, id SessionID) {
	ci = &Config{Magic: magic, Garbage: []byte("initiator garbage"), Decoys: []int{2}, keyPair: vectorKeyPair(t, 0)}
	cr = &Config{Magic: magic, Garbage: bytes.Repeat([]byte{0xee}, 70), Decoys: []int{1, 300}, keyPair: vectorKeyPair(t, 1)}
	a, b := bufPipe(t)
	ra, rb := &recorder{ReadWriter: a}, &recorder{ReadWriter: b}
	init, resp := handshakePair(ra, rb, ci, cr)
	if init.err != nil || resp.err != nil {
		t.Fatalf("initiator: %v; responder: %v", init.err, resp.err)
	}
	if len(init.s.Leftover) != 0 || len(resp.s.Leftover) != 0 {
		t.Fatalf("leftover %d, %d bytes", len(init.s.Leftover), len(resp.s.Leftover))
	}
	return ci, cr, ra.got, rb.got, init.s.ID
}

// TestHandshakeTruncated replays each end's input cut at every offset:
// every cut is ErrHandshakeClosed (never a panic or a hang), the whole input
// completes with the same session id.
func TestHandshakeTruncated(t *testing.T) {
	ci, cr, toInit, toResp, id := transcripts(t)
	for _, end := range []struct {
		name  string
		cfg   *Config
		input []byte
		run   func(io.ReadWriter, *Config) (*Session, error)
	}{
		{"initiator", ci, toInit, Initiate},
		{"responder", cr, toResp, Respond},
	} {
		for k := 0; k <= len(end.input); k++ {
			s, err := end.run(readWriter{bytes.NewReader(end.input[:k]), io.Discard}, end.cfg)
			if k == len(end.input) {
				if err != nil || s.ID != id {
					t.Errorf("%s, whole input (%d bytes): %v", end.name, k, err)
				}
				continue
			}
			if !errors.Is(err, ErrHandshakeClosed) {
				t.Fatalf("%s cut at %d of %d: err %v, want ErrHandshakeClosed", end.name, k, len(end.input), err)
			}
		}
	}
}

// TestHandshakeLeftover: packets that arrive with the version packet come
// back as Leftover and decode as the stream's first packets.
func TestHandshakeLeftover(t *testing.T) {
	ci, cr, toInit, _, _ := transcripts(t)
	// Replay the responder's side to build three packets it would send next.
	a, b := bufPipe(t)
	init, resp := handshakePair(a, b, ci, cr)
	if init.err != nil || resp.err != nil {
		t.Fatal(init.err, resp.err)
	}
	var next []byte
	for i := range 3 {
		next, _ = resp.s.Send.AppendMessage(next, "ping", []byte{byte(i), 0, 0, 0, 0, 0, 0, 0})
	}
	input := append(bytes.Clone(toInit), next...)
	s, err := Initiate(readWriter{bytes.NewReader(input), io.Discard}, ci)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s.Leftover, next) {
		t.Fatalf("leftover %d bytes, want the %d bytes of three packets", len(s.Leftover), len(next))
	}
	pr := newPacketReader(s, bytes.NewReader(nil))
	for i := range 3 {
		c, ignore, err := pr.next()
		cmd, p, derr := DecodeContents(c)
		if err != nil || derr != nil || ignore || cmd != "ping" || p[0] != byte(i) {
			t.Fatalf("packet %d: %q %x %v %v %v", i, cmd, p, ignore, err, derr)
		}
	}
}

func TestGarbageTooLarge(t *testing.T) {
	_, err := Initiate(readWriter{bytes.NewReader(nil), io.Discard}, &Config{Magic: magic, Garbage: make([]byte, MaxGarbage+1)})
	if !errors.Is(err, ErrGarbageTooLarge) {
		t.Fatalf("err %v, want ErrGarbageTooLarge", err)
	}
}

func ExampleSessionID_String() {
	var id SessionID
	id[0], id[31] = 0xab, 0x01
	fmt.Println(id)
	// Output: ab00000000000000000000000000000000000000000000000000000000000001
}

// TestHandshakeOneByteReads replays each end's input one byte per Read
// (and with the EOF on the last data read), so every wait for more bytes
// in the drivers is exercised.
func TestHandshakeOneByteReads(t *testing.T) {
	ci, cr, toInit, toResp, id := transcripts(t)
	for _, end := range []struct {
		name  string
		cfg   *Config
		input []byte
		run   func(io.ReadWriter, *Config) (*Session, error)
	}{
		{"initiator", ci, toInit, Initiate},
		{"responder", cr, toResp, Respond},
	} {
		for _, r := range []struct {
			name string
			r    io.Reader
		}{
			{"one byte", iotest.OneByteReader(bytes.NewReader(end.input))},
			{"data with EOF", iotest.DataErrReader(bytes.NewReader(end.input))},
		} {
			s, err := end.run(readWriter{r.r, io.Discard}, end.cfg)
			if err != nil || s.ID != id {
				t.Errorf("%s, %s: %v", end.name, r.name, err)
			}
		}
	}
	_, err := Respond(readWriter{iotest.OneByteReader(bytes.NewReader(v1Version(magic))), io.Discard}, &Config{Magic: magic})
	if !errors.Is(err, ErrV1Peer) {
		t.Errorf("v1 version one byte at a time: %v, want ErrV1Peer", err)
	}
}
