package bip324

import (
	"bytes"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"reflect"
	"testing"

	"github.com/btcsuite/btcd/v2transport"
)

const btcdNet = v2transport.BitcoinNet(0xd9b4bef9) // mainnet, = magic

// btcdSessionID reads the session id btcd's Peer keeps unexported (it has
// no accessor), so the test can compare it with ours.
func btcdSessionID(t *testing.T, p *v2transport.Peer) SessionID {
	t.Helper()
	var id SessionID
	f := reflect.ValueOf(p).Elem().FieldByName("sessionID")
	if copy(id[:], f.Bytes()) != len(id) {
		t.Fatal("btcd's sessionID is not 32 bytes")
	}
	return id
}

// diffTraffic sends n random packets each way, decoys included: ours with
// AppendPacket to btcd's V2ReceivePacket, btcd's V2EncPacket to our
// Receiver.
func diffTraffic(t *testing.T, s *Session, ours io.ReadWriter, peer *v2transport.Peer, n int) {
	t.Helper()
	rng := mrand.New(mrand.NewPCG(uint64(n), 324))
	size := func() int {
		switch r := rng.IntN(100); {
		case r < 70:
			return rng.IntN(200)
		case r < 98:
			return rng.IntN(20_000)
		default:
			return 200_000 + rng.IntN(300_000)
		}
	}
	type pkt struct {
		contents []byte
		ignore   bool
	}
	gen := func() []pkt {
		ps := make([]pkt, n)
		for i := range ps {
			c := make([]byte, size())
			for j := range c {
				c[j] = byte(rng.Uint32())
			}
			ps[i] = pkt{c, rng.IntN(8) == 0}
		}
		return ps
	}
	toBtcd, toUs := gen(), gen()

	errc := make(chan error, 2)
	go func() { // we send
		var buf []byte
		for _, p := range toBtcd {
			buf = s.Send.AppendPacket(buf[:0], p.contents, nil, p.ignore)
			if _, err := ours.Write(buf); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	go func() { // btcd sends
		for _, p := range toUs {
			if _, _, err := peer.V2EncPacket(p.contents, nil, p.ignore); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	btcdGot := make(chan error, 1)
	go func() { // btcd receives: it skips decoys itself
		for i, p := range toBtcd {
			if p.ignore {
				continue
			}
			got, err := peer.V2ReceivePacket(nil)
			if err != nil {
				btcdGot <- err
				return
			}
			if !bytes.Equal(got, p.contents) {
				btcdGot <- fmt.Errorf("packet %d: btcd received %d bytes, want %d", i, len(got), len(p.contents))
				return
			}
		}
		btcdGot <- nil
	}()
	pr := newPacketReader(s, ours)
	for i, p := range toUs {
		got, ignore, err := pr.next()
		if err != nil {
			t.Fatalf("packet %d from btcd: %v", i, err)
		}
		if ignore != p.ignore || !bytes.Equal(got, p.contents) {
			t.Fatalf("packet %d from btcd: %d bytes ignore=%v, want %d bytes ignore=%v", i, len(got), ignore, len(p.contents), p.ignore)
		}
	}
	if err := <-btcdGot; err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if s.Recv.Packets() < RekeyInterval*4 || s.Send.Packets() < RekeyInterval*4 {
		t.Errorf("only %d and %d packets: too few to cross rekeyings", s.Recv.Packets(), s.Send.Packets())
	}
}

// TestDiffOurInitiatorBtcdResponder: our Initiate against btcd's
// responder over net.Pipe, then 2,000 packets each way.
func TestDiffOurInitiatorBtcdResponder(t *testing.T) {
	for _, tc := range []struct {
		name        string
		garbage     []byte
		decoys      []int
		btcdGarbage int
		btcdDecoys  []int
	}{
		{"plain", []byte{}, nil, 0, nil},
		{"garbage and decoys", nil, []int{0, 5, 4000}, 4095, []int{3, 0, 1000}},
		{"random garbage", nil, nil, 777, []int{1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := bufPipe(t)
			peer := v2transport.NewPeer()
			peer.UseReadWriter(b)
			errc := make(chan error, 1)
			go func() {
				if err := peer.RespondV2Handshake(tc.btcdGarbage, btcdNet); err != nil {
					errc <- err
					return
				}
				errc <- peer.CompleteHandshake(false, tc.btcdDecoys, btcdNet)
			}()
			s, err := initiate(t, a, &Config{Magic: magic, Garbage: tc.garbage, Decoys: tc.decoys})
			if err != nil {
				t.Fatal(err)
			}
			if err := <-errc; err != nil {
				t.Fatalf("btcd responder: %v", err)
			}
			if got := btcdSessionID(t, peer); got != s.ID {
				t.Fatalf("session ids: ours %s, btcd's %s", s.ID, got)
			}
			if s.PeerGarbage != tc.btcdGarbage || s.PeerDecoys != len(tc.btcdDecoys) {
				t.Errorf("saw %d bytes of garbage and %d decoys, want %d and %d", s.PeerGarbage, s.PeerDecoys, tc.btcdGarbage, len(tc.btcdDecoys))
			}
			diffTraffic(t, s, a, peer, 2000)
		})
	}
}

// TestDiffBtcdInitiatorOurResponder: btcd's initiator against our Respond.
func TestDiffBtcdInitiatorOurResponder(t *testing.T) {
	for _, tc := range []struct {
		name        string
		garbage     []byte
		decoys      []int
		btcdGarbage int
		btcdDecoys  []int
	}{
		{"plain", []byte{}, nil, 0, nil},
		{"garbage and decoys", nil, []int{2, 9000}, 4095, []int{0, 0, 17}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := bufPipe(t)
			peer := v2transport.NewPeer()
			peer.UseReadWriter(a)
			errc := make(chan error, 1)
			go func() {
				if err := peer.InitiateV2Handshake(tc.btcdGarbage); err != nil {
					errc <- err
					return
				}
				errc <- peer.CompleteHandshake(true, tc.btcdDecoys, btcdNet)
			}()
			s, err := Respond(b, &Config{Magic: magic, Garbage: tc.garbage, Decoys: tc.decoys})
			if err != nil {
				t.Fatal(err)
			}
			if err := <-errc; err != nil {
				t.Fatalf("btcd initiator: %v", err)
			}
			if got := btcdSessionID(t, peer); got != s.ID {
				t.Fatalf("session ids: ours %s, btcd's %s", s.ID, got)
			}
			if s.PeerGarbage != tc.btcdGarbage || s.PeerDecoys != len(tc.btcdDecoys) {
				t.Errorf("saw %d bytes of garbage and %d decoys, want %d and %d", s.PeerGarbage, s.PeerDecoys, tc.btcdGarbage, len(tc.btcdDecoys))
			}
			diffTraffic(t, s, b, peer, 2000)
		})
	}
}
