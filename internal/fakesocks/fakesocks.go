// Package fakesocks is a fake SOCKS5 proxy for tests (RFC 1928 CONNECT,
// RFC 1929 username/password), on loopback: it maps the names and
// addresses a client asks for to loopback addresses of simulated nodes,
// records every request (address type, host as sent, port, credentials),
// and can answer any reply code instead of connecting.
//
// It plays Tor's SOCKS port for .onion names: a name it was given with Map
// or AddOnion is connected to its loopback target; an unknown name gets
// "host unreachable" (0x04), as Tor answers for an onion service it cannot
// reach. An IP address is looked up the same way; an unmapped loopback
// address is connected to itself; any other unmapped address gets 0x04.
// It never dials anything outside loopback.
//
// A Server closes when its test ends, or on Close, which closes every
// connection and waits for every goroutine.
package fakesocks

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/btcpipe/btcpipe/wire"
)

// Options configure a Server.
type Options struct {
	// NoAuth picks "no authentication" even when the client offers
	// username/password (as a proxy without auth support does).
	NoAuth bool
	// RequireAuth refuses a client that offers no username/password
	// (method reply 0xFF).
	RequireAuth bool
	// RejectAuth answers every username/password with failure.
	RejectAuth bool
	// DialTimeout bounds the connect to a target (0: 5s). A connect that
	// times out is answered 0x06 (TTL expired), a refused one 0x05, any
	// other failure 0x04 (host unreachable).
	DialTimeout time.Duration
}

// Request is one CONNECT request as the proxy received it.
type Request struct {
	Method byte   // the authentication method chosen
	User   string // RFC 1929 username ("" without auth)
	Pass   string
	ATYP   byte   // 1 IPv4, 3 domain name, 4 IPv6
	Host   string // the domain name as sent, or the IP address
	Port   uint16
	Reply  byte // the reply code sent
}

// Server is a fake SOCKS5 proxy on 127.0.0.1.
type Server struct {
	opts Options
	ln   net.Listener
	addr netip.AddrPort

	mu       sync.Mutex
	targets  map[string]netip.AddrPort // host (name or IP string) → target
	replies  map[string]byte           // host → injected reply code
	all      byte                      // injected reply code for every host
	requests []Request
	conns    map[net.Conn]struct{}
	closed   bool
	wg       sync.WaitGroup
}

// Start listens on 127.0.0.1 with a free port. It fails the test if it
// cannot. The server closes when the test ends.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("fakesocks: listen: %v", err)
	}
	s := &Server{opts: opts, ln: ln, addr: ln.Addr().(*net.TCPAddr).AddrPort(),
		targets: map[string]netip.AddrPort{}, replies: map[string]byte{}, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.acceptLoop()
	tb.Cleanup(func() { s.Close() })
	return s
}

// Addr returns the proxy's address.
func (s *Server) Addr() netip.AddrPort { return s.addr }

// Map sends CONNECTs to host (a domain name as the client sends it, or an
// IP address in netip's spelling), whatever their port, to target, which
// must be a loopback address.
func (s *Server) Map(host string, target netip.AddrPort) {
	if !target.Addr().Unmap().IsLoopback() {
		panic("fakesocks: target " + target.String() + " is not loopback")
	}
	s.mu.Lock()
	s.targets[host] = target
	s.mu.Unlock()
}

// AddOnion makes up a Tor v3 address (a random key, the checksum right),
// maps its .onion name to target and returns it with port.
func (s *Server) AddOnion(target netip.AddrPort, port uint16) wire.NetAddrV2 {
	a := RandomOnion(port)
	s.Map(a.Host(), target)
	return a
}

// RandomOnion returns a Tor v3 address with a random key.
func RandomOnion(port uint16) wire.NetAddrV2 {
	var key [32]byte
	for i := range key {
		key[i] = byte(rand.Uint32())
	}
	return wire.NetAddrV2{Network: wire.NetTorV3, Port: port}.WithKey(key)
}

// SetReply makes the proxy answer code to every CONNECT for host (0:
// connect normally again).
func (s *Server) SetReply(host string, code byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if code == 0 {
		delete(s.replies, host)
		return
	}
	s.replies[host] = code
}

// SetReplyAll makes the proxy answer code to every CONNECT (0: normal).
func (s *Server) SetReplyAll(code byte) {
	s.mu.Lock()
	s.all = code
	s.mu.Unlock()
}

// Requests returns every CONNECT request received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Close stops the server, closes every connection and waits for every
// goroutine.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		if !s.track(c) {
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.untrack(c)
			s.serve(c)
		}()
	}
}

var errBad = errors.New("fakesocks: bad request")

func (s *Server) serve(c net.Conn) {
	c.SetDeadline(time.Now().Add(10*time.Second + s.opts.DialTimeout))
	var req Request
	var b [2]byte
	if _, err := io.ReadFull(c, b[:]); err != nil || b[0] != 5 || b[1] == 0 {
		return
	}
	methods := make([]byte, b[1])
	if _, err := io.ReadFull(c, methods); err != nil {
		return
	}
	offers := func(m byte) bool {
		for _, x := range methods {
			if x == m {
				return true
			}
		}
		return false
	}
	switch {
	case offers(2) && !s.opts.NoAuth:
		req.Method = 2
	case offers(0) && !s.opts.RequireAuth:
		req.Method = 0
	default:
		c.Write([]byte{5, 0xFF})
		return
	}
	if _, err := c.Write([]byte{5, req.Method}); err != nil {
		return
	}
	if req.Method == 2 {
		var err error
		if req.User, req.Pass, err = readUserPass(c); err != nil {
			return
		}
		status := byte(0)
		if s.opts.RejectAuth {
			status = 1
		}
		if _, err := c.Write([]byte{1, status}); err != nil || status != 0 {
			return
		}
	}
	var h [4]byte
	if _, err := io.ReadFull(c, h[:]); err != nil || h[0] != 5 {
		return
	}
	req.ATYP = h[3]
	if err := readAddr(c, &req); err != nil {
		return
	}
	target, code := s.decide(&req, h[1])
	req.Reply = code
	var up net.Conn
	if code == 0 {
		var err error
		timeout := s.opts.DialTimeout
		if timeout <= 0 {
			timeout = 5 * time.Second
		}
		up, err = net.DialTimeout("tcp", target.String(), timeout)
		var ne net.Error
		switch {
		case err == nil:
		case errors.Is(err, syscall.ECONNREFUSED):
			req.Reply = 5 // connection refused
		case errors.As(err, &ne) && ne.Timeout():
			req.Reply = 6 // TTL expired
		default:
			req.Reply = 4 // host unreachable
		}
	}
	s.mu.Lock()
	s.requests = append(s.requests, req)
	s.mu.Unlock()
	// Reply: bound address 0.0.0.0:0, as Tor sends.
	if _, err := c.Write([]byte{5, req.Reply, 0, 1, 0, 0, 0, 0, 0, 0}); err != nil || req.Reply != 0 {
		if up != nil {
			up.Close()
		}
		return
	}
	if !s.track(up) {
		return
	}
	defer s.untrack(up)
	c.SetDeadline(time.Time{})
	relay(c, up)
}

// decide returns where req goes, or the reply code to refuse it with.
func (s *Server) decide(req *Request, cmd byte) (netip.AddrPort, byte) {
	if cmd != 1 {
		return netip.AddrPort{}, 7
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.all != 0 {
		return netip.AddrPort{}, s.all
	}
	if code, ok := s.replies[req.Host]; ok {
		return netip.AddrPort{}, code
	}
	if t, ok := s.targets[req.Host]; ok {
		return t, 0
	}
	if req.ATYP != 3 {
		if ip, err := netip.ParseAddr(req.Host); err == nil && ip.IsLoopback() {
			return netip.AddrPortFrom(ip, req.Port), 0
		}
	}
	return netip.AddrPort{}, 4
}

func readUserPass(c net.Conn) (user, pass string, err error) {
	var b [2]byte
	if _, err := io.ReadFull(c, b[:]); err != nil || b[0] != 1 {
		return "", "", errBad
	}
	u := make([]byte, b[1])
	if _, err := io.ReadFull(c, u); err != nil {
		return "", "", err
	}
	if _, err := io.ReadFull(c, b[:1]); err != nil {
		return "", "", err
	}
	p := make([]byte, b[0])
	if _, err := io.ReadFull(c, p); err != nil {
		return "", "", err
	}
	return string(u), string(p), nil
}

func readAddr(c net.Conn, req *Request) error {
	var n int
	switch req.ATYP {
	case 1:
		n = 4
	case 4:
		n = 16
	case 3:
		var l [1]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return err
		}
		n = int(l[0])
	default:
		return fmt.Errorf("%w: atyp %d", errBad, req.ATYP)
	}
	buf := make([]byte, n+2)
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	switch req.ATYP {
	case 1:
		req.Host = netip.AddrFrom4([4]byte(buf[:4])).String()
	case 4:
		req.Host = netip.AddrFrom16([16]byte(buf[:16])).String()
	default:
		req.Host = string(buf[:n])
	}
	req.Port = binary.BigEndian.Uint16(buf[n:])
	return nil
}

// relay copies both ways until either side ends, then closes both.
func relay(a, b net.Conn) {
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		io.Copy(dst, src)
		dst.Close()
		src.Close()
		done <- struct{}{}
	}
	go cp(a, b)
	go cp(b, a)
	<-done
	<-done
}
