package fakesocks_test

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/btcpipe/btcpipe/internal/fakesocks"
	"github.com/btcpipe/btcpipe/netreach"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestCloseEndsRelays closes the server while a relayed connection is open:
// Close returns, the client sees the end, and no goroutine is left.
func TestCloseEndsRelays(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	s := fakesocks.Start(t, fakesocks.Options{})
	a := s.AddOnion(ln.Addr().(*net.TCPAddr).AddrPort(), 8333)
	c, err := (&netreach.SOCKS5{Addr: s.Addr().String()}).DialDomain(t.Context(), a.Host(), a.Port)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	up := <-accepted
	if up == nil {
		t.Fatal("the target saw no connection")
	}
	defer up.Close()
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("Close did not return with a relay open")
	}
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("client read after Close: got %v, want EOF", err)
	}
}

func TestMapRefusesNonLoopback(t *testing.T) {
	s := fakesocks.Start(t, fakesocks.Options{})
	defer func() {
		if recover() == nil {
			t.Error("Map of a public address did not panic")
		}
	}()
	s.Map("x.onion", netip.MustParseAddrPort("203.0.113.1:8333"))
}
