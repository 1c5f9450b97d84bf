package simnet

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/btcpipe/btcpipe/wire"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// client is a minimal dialler speaking through the wire package.
type client struct {
	t   *testing.T
	c   net.Conn
	rd  conn
	out []byte
}

func dial(t *testing.T, ap netip.AddrPort) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", ap.String(), 2*time.Second)
	if err != nil {
		t.Fatalf("dial %v: %v", ap, err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	return &client{t: t, c: c, rd: conn{c: c, magic: wire.Regtest.Magic}}
}

func (c *client) send(msgs ...wire.Message) {
	c.t.Helper()
	c.out = c.out[:0]
	for _, m := range msgs {
		c.out = wire.AppendMessage(c.out, wire.Regtest.Magic, m)
	}
	if _, err := c.c.Write(c.out); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func ourVersion(nonce uint64) *wire.Version {
	return &wire.Version{Protocol: wire.ProtocolVersion, Nonce: nonce, UserAgent: "/test/", Timestamp: time.Now().Unix()}
}

// handshake sends version (and sendaddrv2 if v2) and verack after the
// node's version; it returns the node's version.
func (c *client) handshake(v2 bool) wire.Version {
	c.t.Helper()
	c.send(ourVersion(42))
	var theirs wire.Version
	for {
		m, err := c.rd.next()
		if err != nil {
			c.t.Fatalf("handshake: %v", err)
		}
		switch m := m.(type) {
		case *wire.Version:
			theirs = *m
		case *wire.Verack:
			if v2 {
				c.send(&wire.SendAddrV2{}, &wire.Verack{})
			} else {
				c.send(&wire.Verack{})
			}
			return theirs
		}
	}
}

func newNet(t *testing.T) *Net {
	t.Helper()
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func add(t *testing.T, s *Net, spec Spec) *Node {
	t.Helper()
	n, err := s.Add(spec)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Prefix().Contains(n.Addr.Addr()) || !n.Addr.Addr().IsLoopback() {
		t.Fatalf("%v outside the loopback prefix %v", n, s.Prefix())
	}
	return n
}

func TestGood(t *testing.T) {
	s := newNet(t)
	n := add(t, s, Spec{Kind: Good, UserAgent: "/good:1/", Height: 777, Relay: true})
	other := add(t, s, Spec{Kind: Good})
	tor := wire.NetAddrV2{Network: wire.NetTorV3, Port: 8333}.WithKey([32]byte{1})
	n.SetPeers([]wire.NetAddrV2{other.Entry(), tor})

	for _, v2 := range []bool{true, false} {
		c := dial(t, n.Addr)
		v := c.handshake(v2)
		if v.UserAgent != "/good:1/" || v.StartHeight != 777 || !v.Relay || v.Protocol != wire.ProtocolVersion {
			t.Errorf("version = %+v, want /good:1/, height 777, relay, protocol %d", v, wire.ProtocolVersion)
		}
		c.send(&wire.Ping{Nonce: 9, HasNonce: true}, &wire.GetAddr{})
		var got []wire.NetAddrV2
		for got == nil {
			m, err := c.rd.next()
			if err != nil {
				t.Fatal(err)
			}
			switch m := m.(type) {
			case *wire.Pong:
				if m.Nonce != 9 {
					t.Errorf("pong nonce %d, want 9", m.Nonce)
				}
			case *wire.AddrV2:
				if !v2 {
					t.Error("addrv2 to a peer that did not ask for it")
				}
				got = append([]wire.NetAddrV2{}, m.List...)
			case *wire.Addr:
				if v2 {
					t.Error("addr to a peer that asked for addrv2")
				}
				for _, a := range m.List {
					got = append(got, wire.NetAddrV2FromAddrPort(a.Addr, a.Services, a.Time))
				}
			}
		}
		want := 2
		if !v2 {
			want = 1 // Tor cannot travel in addr
		}
		if len(got) != want {
			t.Fatalf("v2=%v: got %d addresses %v, want %d", v2, len(got), got, want)
		}
		if ap, _ := got[0].AddrPort(); got[0].Network == wire.NetIPv4 && ap != other.Addr {
			t.Errorf("first address %v, want %v", ap, other.Addr)
		}
	}
	if n.GetAddrs() != 2 || n.Accepted() != 2 {
		t.Errorf("getaddrs %d, accepted %d; want 2 and 2", n.GetAddrs(), n.Accepted())
	}
}

func TestFailingKinds(t *testing.T) {
	s := newNet(t)
	t.Run("refused", func(t *testing.T) {
		n := add(t, s, Spec{Kind: Refused})
		_, err := net.DialTimeout("tcp", n.Addr.String(), 2*time.Second)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("dial: %v, want ECONNREFUSED", err)
		}
	})
	t.Run("blackhole", func(t *testing.T) {
		n := add(t, s, Spec{Kind: Blackhole})
		c, err := net.DialTimeout("tcp", n.Addr.String(), 200*time.Millisecond)
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			if c != nil {
				c.Close()
			}
			t.Errorf("dial: %v, want a timeout", err)
		}
	})
	t.Run("stall", func(t *testing.T) {
		n := add(t, s, Spec{Kind: Stall})
		c := dial(t, n.Addr)
		c.send(ourVersion(1))
		_ = c.c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		var b [1]byte
		k, err := c.c.Read(b[:])
		var ne net.Error
		if k != 0 || !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("read %d bytes, %v; want nothing until the deadline", k, err)
		}
	})
	t.Run("garbage", func(t *testing.T) {
		n := add(t, s, Spec{Kind: Garbage})
		c := dial(t, n.Addr)
		c.send(ourVersion(1))
		_, err := c.rd.next()
		if !errors.Is(err, wire.ErrBadMagic) {
			t.Errorf("next: %v, want ErrBadMagic", err)
		}
	})
	t.Run("close after verack", func(t *testing.T) {
		n := add(t, s, Spec{Kind: CloseAfterVerack})
		c := dial(t, n.Addr)
		c.handshake(true)
		c.send(&wire.GetAddr{})
		for {
			_, err := c.rd.next()
			if err == nil {
				continue // wtxidrelay and the like
			}
			if !errors.Is(err, io.EOF) {
				t.Errorf("after getaddr: %v, want EOF", err)
			}
			break
		}
	})
	t.Run("reset", func(t *testing.T) {
		n := add(t, s, Spec{Kind: Reset})
		c := dial(t, n.Addr)
		c.send(ourVersion(1))
		_, err := c.rd.next()
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("next: %v, want ECONNRESET", err)
		}
	})
	t.Run("old version", func(t *testing.T) {
		n := add(t, s, Spec{Kind: OldVersion})
		c := dial(t, n.Addr)
		if v := c.handshake(true); v.Protocol != OldProtocol {
			t.Errorf("protocol %d, want %d", v.Protocol, OldProtocol)
		}
	})
	t.Run("mirror", func(t *testing.T) {
		n := add(t, s, Spec{Kind: Mirror})
		c := dial(t, n.Addr)
		if v := c.handshake(true); v.Nonce != 42 {
			t.Errorf("nonce %d, want ours (42)", v.Nonce)
		}
	})
	t.Run("mute", func(t *testing.T) {
		n := add(t, s, Spec{Kind: Mute})
		n.SetPeers([]wire.NetAddrV2{n.Entry()})
		c := dial(t, n.Addr)
		c.handshake(true)
		c.send(&wire.GetAddr{}, &wire.Ping{Nonce: 5, HasNonce: true})
		for {
			m, err := c.rd.next()
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := m.(*wire.AddrV2); ok {
				t.Fatal("a mute node answered getaddr")
			}
			if p, ok := m.(*wire.Pong); ok && p.Nonce == 5 {
				break // the pong comes after any answer to the getaddr
			}
		}
	})
}

func TestBuild(t *testing.T) {
	s := newNet(t)
	count := map[Kind]int{Good: 30, Mute: 2, Refused: 3, Stall: 1, Garbage: 2, CloseAfterVerack: 2, Reset: 1, OldVersion: 1, Mirror: 1}
	decoys := StandardDecoys(s.Prefix())
	g, err := s.Build(Layout{Count: count, Decoys: decoys, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, n := range count {
		total += n
	}
	if len(g.Nodes) != total || len(g.Seeds) != 1 {
		t.Fatalf("%d nodes, %d seeds; want %d and 1", len(g.Nodes), len(g.Seeds), total)
	}
	// Walk the answers from the seed: every node and every decoy must be
	// named by some reachable good node.
	named := map[string]bool{g.Seeds[0].String(): true}
	queue := []netip.AddrPort{g.Seeds[0]}
	for len(queue) > 0 {
		n := g.ByAddr[queue[0]]
		queue = queue[1:]
		if n.Kind != Good {
			continue
		}
		for _, p := range n.Peers() {
			key := p.String()
			if named[key] {
				continue
			}
			named[key] = true
			if ap, ok := p.AddrPort(); ok && g.ByAddr[ap] != nil {
				queue = append(queue, ap)
			}
		}
	}
	for _, n := range g.Nodes {
		if !named[n.Addr.String()] {
			t.Errorf("%v is not reachable from the seed", n)
		}
	}
	for _, d := range decoys {
		if !named[d.String()] {
			t.Errorf("decoy %v is named by no reachable node", d)
		}
	}
}

func TestPrefixChecks(t *testing.T) {
	for _, p := range []string{"10.0.0.0/16", "127.0.0.0/31", "::1/128", "0.0.0.0/0"} {
		if _, err := New(Options{Prefix: netip.MustParsePrefix(p)}); err == nil {
			t.Errorf("New accepted prefix %s", p)
		}
	}
	s, err := New(Options{Prefix: netip.MustParsePrefix("127.200.7.0/30")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 4 { // .1, .2 and .3 (.0 is skipped), then the /30 is full
		_, err := s.Add(Spec{Kind: Refused})
		if (err != nil) != (i == 3) {
			t.Errorf("Add #%d: %v", i, err)
		}
	}
}
