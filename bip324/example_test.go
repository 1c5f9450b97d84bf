package bip324_test

import (
	"fmt"
	"net"
	"time"

	"github.com/btcpipe/btcpipe/bip324"
	"github.com/btcpipe/btcpipe/wire"
)

// Example dials a v2 peer (here a fake one on loopback, played by
// Respond), completes the handshake, and exchanges one message each way the
// way the writer, framer and verifier stages will.
func Example() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ln.Close()
	peerID := make(chan bip324.SessionID, 1)
	go func() { // the fake v2 peer: answers one ping with a pong
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		s, err := bip324.Respond(c, &bip324.Config{Magic: wire.Regtest.Magic})
		if err != nil {
			return
		}
		peerID <- s.ID
		buf := append([]byte(nil), s.Leftover...)
		for len(buf) < bip324.LengthSize+1+8+bip324.TagSize+1 { // one ping packet
			b := make([]byte, 64)
			n, _ := c.Read(b)
			buf = append(buf, b[:n]...)
		}
		n, _ := s.Recv.DecryptLength(buf)
		contents, _, _ := s.Recv.Open(buf[bip324.LengthSize:bip324.PacketLen(n)], nil)
		_, nonce, _ := bip324.DecodeContents(contents)
		pong, _ := s.Send.AppendMessage(nil, "pong", nonce)
		c.Write(pong)
		c.Read(make([]byte, 1)) // until the initiator closes
	}()

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second)) // the caller's deadline
	s, err := bip324.Initiate(conn, &bip324.Config{Magic: wire.Regtest.Magic})
	if err != nil {
		fmt.Println("v2 handshake:", err, "fall back to v1:", bip324.FallBackToV1(err))
		return
	}
	fmt.Println("same session id:", s.ID == <-peerID)

	// Writer: append the encrypted message to a reused buffer.
	out, _ := s.Send.AppendMessage(make([]byte, 0, 64), "ping", []byte{1, 2, 3, 4, 5, 6, 7, 8})
	conn.Write(out)

	// Framer: decrypt the length, cut the packet. Verifier: open in place.
	slab := append(make([]byte, 0, 4096), s.Leftover...)
	for {
		if len(slab) >= bip324.LengthSize {
			tmp := *s.Recv // peek: a Receiver is a value (a real framer keeps state)
			if n, _ := tmp.DecryptLength(slab); len(slab) >= bip324.PacketLen(n) {
				break
			}
		}
		n, err := conn.Read(slab[len(slab):cap(slab)])
		if err != nil {
			fmt.Println(err)
			return
		}
		slab = slab[:len(slab)+n]
	}
	n, err := s.Recv.DecryptLength(slab)
	if err != nil {
		fmt.Println(err)
		return
	}
	contents, ignore, err := s.Recv.Open(slab[bip324.LengthSize:bip324.PacketLen(n)], nil)
	if err != nil {
		fmt.Println(err) // ErrBadTag: end the connection
		return
	}
	cmd, payload, err := bip324.DecodeContents(contents)
	fmt.Println(cmd, payload, ignore, err)
	// Output:
	// same session id: true
	// pong [1 2 3 4 5 6 7 8] false <nil>
}
