package netreach_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/btcpipe/btcpipe/internal/fakesocks"
	"github.com/btcpipe/btcpipe/netreach"
)

func TestSOCKSDomainNameArrivesAsName(t *testing.T) {
	noDNS(t)
	ctx := testCtx(t)
	node := startEcho(t)
	proxy := fakesocks.Start(t, fakesocks.Options{})
	onion := proxy.AddOnion(node.addr(), 8333)
	var rec dialRecorder
	s := &netreach.SOCKS5{Addr: proxy.Addr().String(), Dial: rec.proxyDial}
	c, err := s.DialDomain(ctx, onion.Host(), onion.Port)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c)
	reqs := proxy.Requests()
	if len(reqs) != 1 {
		t.Fatalf("got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.ATYP != netreach.ATYPDomain || r.Host != onion.Host() || r.Port != 8333 {
		t.Errorf("request: got atyp %d host %q port %d, want atyp 3 host %q port 8333", r.ATYP, r.Host, r.Port, onion.Host())
	}
	if got, want := rec.proxyCalls(), []string{proxy.Addr().String()}; len(got) != 1 || got[0] != want[0] {
		t.Errorf("proxy dials: got %v, want %v", got, want)
	}
	noNames(t, rec.proxyCalls())
}

func TestSOCKSAddressTypes(t *testing.T) {
	ctx := testCtx(t)
	node := startEcho(t)
	proxy := fakesocks.Start(t, fakesocks.Options{})
	tests := []struct {
		name     string
		ap       netip.AddrPort
		wantATYP byte
		wantHost string
	}{
		{"ipv4", netip.MustParseAddrPort("203.0.113.9:8333"), netreach.ATYPIPv4, "203.0.113.9"},
		{"ipv4-mapped", netip.MustParseAddrPort("[::ffff:198.51.100.4]:8333"), netreach.ATYPIPv4, "198.51.100.4"},
		{"ipv6", netip.MustParseAddrPort("[2001:db8::7]:8333"), netreach.ATYPIPv6, "2001:db8::7"},
		{"cjdns", netip.MustParseAddrPort("[fc00::1]:8333"), netreach.ATYPIPv6, "fc00::1"},
	}
	s := &netreach.SOCKS5{Addr: proxy.Addr().String()}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proxy.Map(tt.wantHost, node.addr())
			c, err := s.DialAddr(ctx, tt.ap)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			roundTrip(t, c)
			r := proxy.Requests()[i]
			if r.ATYP != tt.wantATYP || r.Host != tt.wantHost || r.Port != tt.ap.Port() {
				t.Errorf("got atyp %d host %s port %d, want atyp %d host %s port %d",
					r.ATYP, r.Host, r.Port, tt.wantATYP, tt.wantHost, tt.ap.Port())
			}
		})
	}
}

func TestSOCKSCredentialsDifferPerConnection(t *testing.T) {
	ctx := testCtx(t)
	node := startEcho(t)
	proxy := fakesocks.Start(t, fakesocks.Options{})
	onion := proxy.AddOnion(node.addr(), 8333)
	s := &netreach.SOCKS5{Addr: proxy.Addr().String()}
	const n = 20
	for range n {
		c, err := s.DialDomain(ctx, onion.Host(), onion.Port)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	reqs := proxy.Requests()
	if len(reqs) != n {
		t.Fatalf("got %d requests, want %d", len(reqs), n)
	}
	users, pairs := map[string]bool{}, map[[2]string]bool{}
	for _, r := range reqs {
		if r.Method != 2 || r.User == "" || r.Pass == "" {
			t.Fatalf("request without username/password: %+v", r)
		}
		users[r.User] = true
		pairs[[2]string{r.User, r.Pass}] = true
	}
	if len(users) != n || len(pairs) != n {
		t.Errorf("got %d distinct usernames and %d distinct credentials in %d connections, want %d", len(users), len(pairs), n, n)
	}
}

func TestSOCKSSharedCredentialsOfferNoAuth(t *testing.T) {
	ctx := testCtx(t)
	node := startEcho(t)
	proxy := fakesocks.Start(t, fakesocks.Options{})
	onion := proxy.AddOnion(node.addr(), 8333)
	s := &netreach.SOCKS5{Addr: proxy.Addr().String(), Credentials: func() netreach.Credentials { return netreach.Credentials{} }}
	c, err := s.DialDomain(ctx, onion.Host(), onion.Port)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if r := proxy.Requests()[0]; r.Method != 0 || r.User != "" {
		t.Errorf("got method %d user %q, want method 0 and no user", r.Method, r.User)
	}
}

func TestSOCKSProxyWithoutAuthSupport(t *testing.T) {
	ctx := testCtx(t)
	node := startEcho(t)
	proxy := fakesocks.Start(t, fakesocks.Options{NoAuth: true})
	onion := proxy.AddOnion(node.addr(), 8333)
	s := &netreach.SOCKS5{Addr: proxy.Addr().String()}
	c, err := s.DialDomain(ctx, onion.Host(), onion.Port)
	if err != nil {
		t.Fatalf("a proxy choosing no auth must still work: %v", err)
	}
	defer c.Close()
	roundTrip(t, c)
}

func TestSOCKSReplyCodesClassified(t *testing.T) {
	ctx := testCtx(t)
	proxy := fakesocks.Start(t, fakesocks.Options{})
	onion := fakesocks.RandomOnion(8333)
	s := &netreach.SOCKS5{Addr: proxy.Addr().String()}
	tests := []struct {
		code       byte
		want       error
		wantPrefix string
	}{
		{0x01, netreach.ErrSOCKSGeneralFailure, "socks: general failure"},
		{0x02, netreach.ErrSOCKSNotAllowed, "socks: connection not allowed by ruleset"},
		{0x03, netreach.ErrSOCKSNetworkUnreachable, "socks: network unreachable"},
		{0x04, netreach.ErrSOCKSHostUnreachable, "socks: host unreachable"},
		{0x05, netreach.ErrSOCKSConnectionRefused, "socks: connection refused"},
		{0x06, netreach.ErrSOCKSTTLExpired, "socks: TTL expired"},
		{0x07, netreach.ErrSOCKSCommandNotSupported, "socks: command not supported"},
		{0x08, netreach.ErrSOCKSAddressNotSupported, "socks: address type not supported"},
		{0xF0, netreach.ErrSOCKSOnionNotFound, "socks: onion service descriptor not found"},
		{0xF1, netreach.ErrSOCKSOnionInvalid, "socks: onion service descriptor invalid"},
		{0xF2, netreach.ErrSOCKSOnionIntroFailed, "socks: onion service introduction failed"},
		{0xF3, netreach.ErrSOCKSOnionRendFailed, "socks: onion service rendezvous failed"},
		{0xF4, netreach.ErrSOCKSOnionMissingAuth, "socks: onion service missing client authorization"},
		{0xF5, netreach.ErrSOCKSOnionBadAuth, "socks: onion service wrong client authorization"},
		{0xF6, netreach.ErrSOCKSOnionBadAddress, "socks: onion service invalid address"},
		{0xF7, netreach.ErrSOCKSOnionIntroTimeout, "socks: onion service introduction timed out"},
		{0x09, netreach.ErrSOCKSUnknownReply, "socks: unknown reply code"},
		{0xAB, netreach.ErrSOCKSUnknownReply, "socks: unknown reply code"},
	}
	if len(tests)-2 != len(netreach.SOCKSReplyCodes) {
		t.Fatalf("the table covers %d codes, SOCKSReplyCodes has %d", len(tests)-2, len(netreach.SOCKSReplyCodes))
	}
	for _, tt := range tests {
		t.Run(tt.wantPrefix, func(t *testing.T) {
			proxy.SetReply(onion.Host(), tt.code)
			c, err := s.DialDomain(ctx, onion.Host(), onion.Port)
			if err == nil {
				c.Close()
				t.Fatal("dial succeeded")
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("got %v, want errors.Is %v", err, tt.want)
			}
			var se *netreach.SOCKSError
			if !errors.As(err, &se) || se.Code != tt.code || se.Target != onion.Host()+":8333" {
				t.Errorf("got %#v, want a *SOCKSError with code 0x%02x and the target", err, tt.code)
			}
			if !strings.HasPrefix(err.Error(), tt.wantPrefix) {
				t.Errorf("message %q does not start with %q", err, tt.wantPrefix)
			}
			if got := netreach.SOCKSReplyErr(tt.code); got != tt.want {
				t.Errorf("SOCKSReplyErr(0x%02x) = %v, want %v", tt.code, got, tt.want)
			}
		})
	}
	if netreach.SOCKSReplyErr(0) != nil {
		t.Error("SOCKSReplyErr(0) is not nil")
	}
	// An unknown name: the fake answers as Tor does for a service it
	// cannot reach.
	proxy.SetReply(onion.Host(), 0)
	_, err := s.DialDomain(ctx, onion.Host(), onion.Port)
	if !errors.Is(err, netreach.ErrSOCKSHostUnreachable) {
		t.Errorf("unknown onion: got %v, want host unreachable", err)
	}
}

func TestSOCKSAuthFailures(t *testing.T) {
	ctx := testCtx(t)
	tests := []struct {
		name   string
		opts   fakesocks.Options
		shared bool
		want   error
	}{
		{"rejected", fakesocks.Options{RejectAuth: true}, false, netreach.ErrSOCKSAuthFailed},
		{"auth required", fakesocks.Options{RequireAuth: true}, true, netreach.ErrSOCKSNoAcceptableMethod},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proxy := fakesocks.Start(t, tt.opts)
			s := &netreach.SOCKS5{Addr: proxy.Addr().String()}
			if tt.shared {
				s.Credentials = func() netreach.Credentials { return netreach.Credentials{} }
			}
			_, err := s.DialDomain(ctx, fakesocks.RandomOnion(1).Host(), 8333)
			if !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// rawProxy serves each connection with script, on loopback.
func rawProxy(t *testing.T, script func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			script(c)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

func TestSOCKSHostileProxy(t *testing.T) {
	read := func(c net.Conn, n int) { io.ReadFull(c, make([]byte, n)) }
	tests := []struct {
		name   string
		script func(c net.Conn)
		want   error
	}{
		{"closes at once", func(c net.Conn) {}, netreach.ErrSOCKSProtocol},
		{"socks4 answer", func(c net.Conn) { read(c, 3); c.Write([]byte{4, 0}) }, netreach.ErrSOCKSProtocol},
		{"method not offered", func(c net.Conn) { read(c, 3); c.Write([]byte{5, 0x80}) }, netreach.ErrSOCKSProtocol},
		{"short reply", func(c net.Conn) { read(c, 3); c.Write([]byte{5, 0}); read(c, 4+1+10+2); c.Write([]byte{5, 0, 0}) }, netreach.ErrSOCKSProtocol},
		{"bad reply atyp", func(c net.Conn) {
			read(c, 3)
			c.Write([]byte{5, 0})
			read(c, 4+1+10+2)
			c.Write([]byte{5, 0, 0, 9, 0, 0})
		}, netreach.ErrSOCKSProtocol},
		{"reply with code only", func(c net.Conn) { read(c, 3); c.Write([]byte{5, 0}); read(c, 4+1+10+2); c.Write([]byte{5, 4}) }, netreach.ErrSOCKSHostUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := rawProxy(t, tt.script)
			s := &netreach.SOCKS5{Addr: addr, Credentials: func() netreach.Credentials { return netreach.Credentials{} }}
			c, err := s.DialDomain(testCtx(t), "abcdefghij", 8333)
			if err == nil {
				c.Close()
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSOCKSSilentProxyObeysContext(t *testing.T) {
	stop := make(chan struct{})
	addr := rawProxy(t, func(c net.Conn) { <-stop })
	defer close(stop)
	s := &netreach.SOCKS5{Addr: addr}
	ctx, cancel := context.WithTimeout(t.Context(), 150*time.Millisecond)
	defer cancel()
	begin := time.Now()
	_, err := s.DialDomain(ctx, fakesocks.RandomOnion(1).Host(), 8333)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(begin); d > 2*time.Second {
		t.Errorf("returned after %v; want soon after the 150ms deadline", d)
	}
}

func TestSOCKSBadDomainLength(t *testing.T) {
	s := &netreach.SOCKS5{Addr: "127.0.0.1:1"}
	for _, host := range []string{"", strings.Repeat("a", 256)} {
		if _, err := s.DialDomain(t.Context(), host, 1); !errors.Is(err, netreach.ErrSOCKSAddressNotSupported) {
			t.Errorf("host of %d bytes: got %v, want ErrSOCKSAddressNotSupported", len(host), err)
		}
	}
}
