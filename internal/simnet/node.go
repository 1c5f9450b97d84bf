package simnet

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/btcpipe/btcpipe/wire"
)

// Limits of a node's connections.
const (
	// maxBuffered bounds what a node buffers from one connection: the
	// dialler only sends small messages.
	maxBuffered = 1 << 20
	// writeTimeout bounds each write.
	writeTimeout = 10 * time.Second
)

// Node is one simulated node.
type Node struct {
	Kind Kind
	// Addr is where the node listens (for Refused, where nothing does).
	Addr netip.AddrPort

	net     *Net
	version wire.Version // Nonce and AddrRecv are set per connection
	ln      net.Listener
	hole    io.Closer // Blackhole's socket

	mu         sync.Mutex
	peers      []wire.NetAddrV2
	advertised wire.NetAddrV2   // how others name it; zero: Addr
	selfAnn    []wire.NetAddrV2 // announced as its own before each answer

	accepted, getaddrs atomic.Int64
}

// Version returns what the node's version message says (without the
// per-connection nonce and addresses).
func (n *Node) Version() wire.Version { return n.version }

// Entry returns the node's address as an addr/addrv2 entry: the
// advertised one (SetAdvertised) if set, else Addr.
func (n *Node) Entry() wire.NetAddrV2 {
	n.mu.Lock()
	a := n.advertised
	n.mu.Unlock()
	now := uint32(time.Now().Unix())
	if a.Network == 0 {
		return wire.NetAddrV2FromAddrPort(n.Addr, n.version.Services, now)
	}
	a.Services, a.Time = n.version.Services, now
	return a
}

// SetAdvertised sets the address other nodes name this one by: a Tor v3
// or I2P address mapped to Addr by a fake proxy or bridge, or a CJDNS
// address it listens on.
func (n *Node) SetAdvertised(a wire.NetAddrV2) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.advertised = a
}

// SetSelfAnnounce makes the node announce list as its own addresses, one
// entry per addr message, before its answer to getaddr (as a node on
// several networks that tells a crawler its other addresses).
func (n *Node) SetSelfAnnounce(list []wire.NetAddrV2) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.selfAnn = append([]wire.NetAddrV2(nil), list...)
}

// SetPeers sets the addresses the node answers getaddr with (a Good node;
// others never answer). It takes a copy.
func (n *Node) SetPeers(list []wire.NetAddrV2) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.peers = append([]wire.NetAddrV2(nil), list...)
}

// Peers returns a copy of the addresses the node answers getaddr with.
func (n *Node) Peers() []wire.NetAddrV2 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]wire.NetAddrV2(nil), n.peers...)
}

// Accepted returns how many connections the node accepted.
func (n *Node) Accepted() int64 { return n.accepted.Load() }

// GetAddrs returns how many getaddr messages the node answered.
func (n *Node) GetAddrs() int64 { return n.getaddrs.Load() }

func (n *Node) String() string { return n.Kind.String() + " node " + n.Addr.String() }

// listen binds the node's socket at ap (a port of 0 picks one).
func (n *Node) listen(ap netip.AddrPort) error {
	switch n.Kind {
	case Blackhole:
		hole, addr, err := blackhole(ap)
		if err != nil {
			return fmt.Errorf("simnet: blackhole at %v: %w", ap, err)
		}
		n.hole, n.Addr = hole, addr
		return nil
	case Refused:
		// Bind and close: the port was free a moment ago and nobody
		// else uses this address, so a connect to it is refused.
		ln, err := net.Listen(tcpNet(ap), ap.String())
		if err != nil {
			return fmt.Errorf("simnet: %w", err)
		}
		n.Addr = ln.Addr().(*net.TCPAddr).AddrPort()
		return ln.Close()
	}
	ln, err := net.Listen(tcpNet(ap), ap.String())
	if err != nil {
		return fmt.Errorf("simnet: %w", err)
	}
	n.ln = ln
	a := ln.Addr().(*net.TCPAddr).AddrPort()
	n.Addr = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	return nil
}

// tcpNet is "tcp4" for an IPv4 address, else "tcp6".
func tcpNet(ap netip.AddrPort) string {
	if ap.Addr().Is4() {
		return "tcp4"
	}
	return "tcp6"
}

func (n *Node) closeListener() error {
	var err error
	if n.ln != nil {
		err = n.ln.Close()
		if errors.Is(err, net.ErrClosed) {
			err = nil
		}
	}
	if n.hole != nil {
		if herr := n.hole.Close(); err == nil {
			err = herr
		}
	}
	return err
}

func (n *Node) acceptLoop() {
	for {
		c, err := n.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// EMFILE and the like: back off briefly rather than spin.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		n.accepted.Add(1)
		if !n.net.track(c) {
			c.Close()
			return
		}
		go func() {
			defer n.net.untrack(c)
			defer c.Close()
			n.serve(c)
		}()
	}
}

// conn is one accepted connection's framing.
type conn struct {
	c     net.Conn
	magic wire.Magic
	buf   []byte // received, not yet framed
	dec   wire.Decoder
	out   []byte
}

// next returns the next message; it is valid until the next call.
func (c *conn) next() (wire.Message, error) {
	for {
		f, n, err := wire.ScanFrame(c.buf, c.magic)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			if !f.Verify() {
				c.buf = c.buf[n:]
				continue
			}
			m, err := c.dec.Decode(f.CommandName(), f.Payload)
			// The message may alias buf; compact only on the next call.
			c.buf = c.buf[n:]
			if err != nil {
				return nil, err
			}
			return m, nil
		}
		if len(c.buf) > maxBuffered {
			return nil, errors.New("simnet: too much unframed input")
		}
		if cap(c.buf)-len(c.buf) < 512 {
			nb := make([]byte, len(c.buf), max(2*cap(c.buf), 4096))
			copy(nb, c.buf)
			c.buf = nb
		}
		k, err := c.c.Read(c.buf[len(c.buf):cap(c.buf)])
		c.buf = c.buf[:len(c.buf)+k]
		if err != nil {
			return nil, err
		}
	}
}

func (c *conn) send(msgs ...wire.Message) error {
	c.out = c.out[:0]
	for _, m := range msgs {
		c.out = wire.AppendMessage(c.out, c.magic, m)
	}
	return c.write(c.out)
}

func (c *conn) write(b []byte) error {
	_ = c.c.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := c.c.Write(b)
	return err
}

// serve plays the node's part on one connection until it ends.
func (n *Node) serve(nc net.Conn) {
	if n.Kind == Stall {
		_, _ = io.Copy(io.Discard, nc)
		return
	}
	c := &conn{c: nc, magic: n.net.magic, buf: make([]byte, 0, 4096)}
	m, err := c.next()
	if err != nil {
		return
	}
	theirs, ok := m.(*wire.Version)
	if !ok {
		return
	}
	ip16 := n.Addr.Addr().As16()
	nonce := uint64(ip16[15])<<40 | uint64(n.Addr.Port())<<24 | uint64(time.Now().UnixNano()&0xffffff) | 1
	switch n.Kind {
	case Garbage:
		junk := []byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		if c.write(junk) == nil {
			_, _ = io.Copy(io.Discard, nc)
		}
		return
	case Reset:
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // close sends RST
		}
		return
	case Mirror:
		nonce = theirs.Nonce
	}
	v := n.version
	v.Timestamp = time.Now().Unix()
	v.Nonce = nonce
	if ra, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		v.AddrRecv = wire.NetAddr{Addr: ra.AddrPort()}
	}
	v.AddrFrom = wire.NetAddr{Services: v.Services, Addr: n.Addr}
	msgs := []wire.Message{&v}
	if v.Protocol >= 70016 && theirs.Protocol >= 70016 {
		msgs = append(msgs, &wire.WTxIDRelay{}, &wire.SendAddrV2{})
	}
	msgs = append(msgs, &wire.Verack{})
	if err := c.send(msgs...); err != nil {
		return
	}
	var gotVerack, wantV2, answered bool
	for {
		m, err := c.next()
		if err != nil {
			return
		}
		if gotVerack && n.Kind == CloseAfterVerack {
			return
		}
		switch m := m.(type) {
		case *wire.Verack:
			gotVerack = true
		case *wire.SendAddrV2:
			wantV2 = true
		case *wire.Ping:
			if err := c.send(&wire.Pong{Nonce: m.Nonce}); err != nil {
				return
			}
		case *wire.GetAddr:
			if n.Kind != Good || answered {
				continue
			}
			answered = true
			n.getaddrs.Add(1)
			if err := n.answerGetAddr(c, wantV2); err != nil {
				return
			}
		}
	}
}

// answerGetAddr sends the node's peers: addrv2 in messages of at most 1,000
// entries, or, to a peer that did not ask for addrv2, addr with the IPv4
// and IPv6 entries (the others cannot be expressed in addr).
func (n *Node) answerGetAddr(c *conn, v2 bool) error {
	peers := n.Peers()
	now := uint32(time.Now().Unix())
	n.mu.Lock()
	self := append([]wire.NetAddrV2(nil), n.selfAnn...)
	n.mu.Unlock()
	if v2 {
		for _, a := range self {
			a.Time = now
			if err := c.send(&wire.AddrV2{List: []wire.NetAddrV2{a}}); err != nil {
				return err
			}
		}
		for start := 0; start < len(peers); start += wire.MaxAddrEntries {
			chunk := peers[start:min(start+wire.MaxAddrEntries, len(peers))]
			for i := range chunk {
				if chunk[i].Time == 0 || chunk[i].Time > staleBefore(now) {
					chunk[i].Time = now // fresh, as a live address is
				}
			}
			if err := c.send(&wire.AddrV2{List: chunk}); err != nil {
				return err
			}
		}
		return nil
	}
	var list []wire.TimedNetAddr
	for _, p := range peers {
		ap, ok := p.AddrPort()
		if !ok || p.Network == wire.NetCJDNS {
			continue
		}
		t := now
		if p.Time != 0 && p.Time <= staleBefore(now) {
			t = p.Time
		}
		list = append(list, wire.TimedNetAddr{Time: t, NetAddr: wire.NetAddr{Services: p.Services, Addr: ap}})
	}
	for start := 0; start < len(list); start += wire.MaxAddrEntries {
		if err := c.send(&wire.Addr{List: list[start:min(start+wire.MaxAddrEntries, len(list))]}); err != nil {
			return err
		}
	}
	return nil
}

// StaleAge is the age from which an entry's own timestamp is kept in an
// answer (a stale address); younger entries are sent as fresh (now).
const StaleAge = 7 * 24 * time.Hour

func staleBefore(now uint32) uint32 {
	return now - uint32(StaleAge/time.Second)
}
