//go:build !race

package bip324

import (
	"bytes"
	"testing"
)

// TestPacketPathAllocatesNothing checks the claim the stages rely on: once
// warm, decrypting a length, opening a packet in place (directly or with a
// handed-out key), decoding its message type and appending a packet to a
// buffer with room allocate nothing. (Allocation counts mean nothing under
// the race detector, so this file builds only without it.)
func TestPacketPathAllocatesNothing(t *testing.T) {
	k := Keys{InitiatorL: randKey(t), InitiatorP: randKey(t)}
	send, _ := k.Ciphers(true)
	_, recv := k.Ciphers(false)
	const runs = 200
	var stream [][]byte
	for i := range 2 * (runs + 1) { // two per run, across rekeyings
		p, err := send.AppendMessage(nil, []string{"ping", "version", "tx"}[i%3], bytes.Repeat([]byte{1}, i%2000))
		if err != nil {
			t.Fatal(err)
		}
		stream = append(stream, p)
	}
	slab := make([]byte, 1<<16)
	i := 0
	open := func() {
		p := stream[i]
		i++
		copy(slab, p)
		n, err := recv.DecryptLength(slab)
		if err != nil {
			t.Fatal(err)
		}
		c, _, err := recv.Open(slab[LengthSize:PacketLen(n)], nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := DecodeContents(c); err != nil {
			t.Fatal(err)
		}
		p = stream[i]
		i++
		copy(slab, p)
		if n, err = recv.DecryptLength(slab); err != nil {
			t.Fatal(err)
		}
		key := recv.NextPacketKey()
		if _, _, err := OpenWith(&key, slab[LengthSize:PacketLen(n)], nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := testing.AllocsPerRun(runs, open); got != 0 {
		t.Errorf("receive path: %.1f allocations per two packets, want 0", got)
	}

	buf := make([]byte, 0, 1<<16)
	payload := make([]byte, 4000)
	appendFn := func() {
		var err error
		buf = send.AppendPacket(buf[:0], payload, nil, true)
		if buf, err = send.AppendMessage(buf[:0], "inv", payload); err != nil {
			t.Fatal(err)
		}
		if buf, err = send.AppendMessage(buf[:0], "wtxidrelay", nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := testing.AllocsPerRun(runs, appendFn); got != 0 {
		t.Errorf("send path: %.1f allocations, want 0", got)
	}
}
