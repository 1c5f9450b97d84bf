package netreach_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echo is a loopback TCP server that echoes every byte; it stands for a
// node behind a proxy.
type echo struct {
	ln       net.Listener
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	accepted atomic.Int32
}

func startEcho(t *testing.T) *echo { return startEchoOf(t) }

func startEchoTB(tb testing.TB) netip.AddrPort { return startEchoOf(tb).addr() }

func startEchoOf(t testing.TB) *echo {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &echo{ln: ln, conns: map[net.Conn]struct{}{}}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e.accepted.Add(1)
			e.mu.Lock()
			e.conns[c] = struct{}{}
			e.mu.Unlock()
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		e.mu.Lock()
		for c := range e.conns {
			c.Close()
		}
		e.mu.Unlock()
		e.wg.Wait()
	})
	return e
}

func (e *echo) addr() netip.AddrPort { return e.ln.Addr().(*net.TCPAddr).AddrPort() }

// roundTrip writes a line on c and checks it comes back.
func roundTrip(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	msg := []byte("hello through the proxy\n")
	if _, err := c.Write(msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read: %v", err)
	}
	if string(got) != string(msg) {
		t.Fatalf("echo: got %q, want %q", got, msg)
	}
}

// dialRecorder is a ProxyDialFunc that records every address it is asked
// for, and a DirectDialFunc that counts its calls.
type dialRecorder struct {
	mu      sync.Mutex
	proxied []string
	direct  []netip.AddrPort
}

func (r *dialRecorder) proxyDial(ctx context.Context, network, addr string) (net.Conn, error) {
	r.mu.Lock()
	r.proxied = append(r.proxied, addr)
	r.mu.Unlock()
	if ap, err := netip.ParseAddrPort(addr); err != nil || !ap.Addr().Unmap().IsLoopback() {
		return nil, errNotLoopback
	}
	d := net.Dialer{Resolver: failingResolver()}
	return d.DialContext(ctx, network, addr)
}

func (r *dialRecorder) directDial(ctx context.Context, ap netip.AddrPort) (net.Conn, error) {
	r.mu.Lock()
	r.direct = append(r.direct, ap)
	r.mu.Unlock()
	if !ap.Addr().Unmap().IsLoopback() {
		// Tests dial only loopback: a direct dial elsewhere is recorded
		// and refused, never attempted.
		return nil, errNotLoopback
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", ap.String())
}

func (r *dialRecorder) directCalls() []netip.AddrPort {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]netip.AddrPort(nil), r.direct...)
}

func (r *dialRecorder) proxyCalls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.proxied...)
}

// dnsLookups counts lookups that reached failingResolver.
var dnsLookups atomic.Int32

var errNotLoopback = errors.New("test: refusing to dial a non-loopback address")

var errNoDNS = errors.New("test: DNS lookup attempted")

// failingResolver is a resolver whose every query fails and is counted.
func failingResolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
		dnsLookups.Add(1)
		return nil, errNoDNS
	}}
}

// noDNS makes every lookup through net.DefaultResolver fail and be
// counted, and checks at the end of the test that none happened.
func noDNS(t *testing.T) {
	t.Helper()
	old := net.DefaultResolver
	net.DefaultResolver = failingResolver()
	before := dnsLookups.Load()
	t.Cleanup(func() {
		net.DefaultResolver = old
		if n := dnsLookups.Load() - before; n != 0 {
			t.Errorf("%d DNS lookups were attempted; want none", n)
		}
	})
}

// noNames checks that no proxy dial named a .onion or .i2p host.
func noNames(t *testing.T, dialled []string) {
	t.Helper()
	for _, a := range dialled {
		if l := strings.ToLower(a); strings.Contains(l, ".onion") || strings.Contains(l, ".i2p") {
			t.Errorf("dialled %q: a name reached a local dial", a)
		}
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
