package fakesam_test

import (
	"crypto/sha256"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/btcpipe/btcpipe/internal/fakesam"
	"github.com/btcpipe/btcpipe/netreach"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRandomDestinationHashesToItsName(t *testing.T) {
	dest, a := fakesam.RandomDestination()
	raw, err := netreach.I2PBase64.DecodeString(dest)
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(raw) != a.Key() || a.Port != 0 {
		t.Errorf("destination does not hash to its key, or port %d", a.Port)
	}
	key, err := netreach.ParseI2PHost(a.Host())
	if err != nil || key != a.Key() {
		t.Errorf("ParseI2PHost(%s) = %x, %v", a.Host(), key, err)
	}
}

// TestCloseEndsSessionsAndStreams closes the bridge with a session and a
// stream open: Close returns and no goroutine is left.
func TestCloseEndsSessionsAndStreams(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			defer c.Close()
			c.Read(make([]byte, 1))
		}
	}()
	b := fakesam.Start(t)
	a := b.AddNode(ln.Addr().(*net.TCPAddr).AddrPort())
	sam := netreach.NewSAM(b.Addr().String(), nil)
	defer sam.Close()
	c, err := sam.Dial(t.Context(), a.Host())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	done := make(chan struct{})
	go func() { b.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("Close did not return with a session and a stream open")
	}
}
