package fakepeer_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/btcpipe/btcpipe/internal/fakepeer"
	"github.com/btcpipe/btcpipe/wire"
)

// client is the node's side of a connection to a fake peer, played by hand.
type client struct {
	t   *testing.T
	nc  net.Conn
	buf []byte
}

func dial(t *testing.T, p *fakepeer.Peer) *client {
	t.Helper()
	nc, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		t.Fatalf("dial %s: %v", p.Addr(), err)
	}
	t.Cleanup(func() { nc.Close() })
	return &client{t: t, nc: nc}
}

func (c *client) send(ms ...wire.Message) {
	c.t.Helper()
	var b []byte
	for _, m := range ms {
		b = wire.AppendMessage(b, wire.Regtest.Magic, m)
	}
	c.raw(b)
}

func (c *client) raw(b []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("client write: %v", err)
	}
}

// next reads one message, failing the test after a second.
func (c *client) next() wire.Message {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(time.Second))
	tmp := make([]byte, 4096)
	for {
		f, n, err := wire.ScanFrame(c.buf, wire.Regtest.Magic)
		if err != nil {
			c.t.Fatalf("client: %v", err)
		}
		if n > 0 {
			c.buf = c.buf[n:]
			m, err := wire.Decode(f.CommandName(), slices.Clone(f.Payload))
			if err != nil {
				c.t.Fatalf("client: decode %s: %v", f.CommandName(), err)
			}
			return m
		}
		k, err := c.nc.Read(tmp)
		if err != nil {
			c.t.Fatalf("client read: %v", err)
		}
		c.buf = append(c.buf, tmp[:k]...)
	}
}

func (c *client) commands(n int) []string {
	c.t.Helper()
	var out []string
	for range n {
		out = append(out, c.next().Command())
	}
	return out
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestHandshake(t *testing.T) {
	tests := []struct {
		name     string
		opts     fakepeer.HandshakeOpts
		wantSent []string // what the fake peer sends, in order
	}{
		{name: "version after the node's", opts: fakepeer.HandshakeOpts{},
			wantSent: []string{"version", "verack"}},
		{name: "version first", opts: fakepeer.HandshakeOpts{VersionFirst: true},
			wantSent: []string{"version", "verack"}},
		{name: "wtxidrelay and sendaddrv2", opts: fakepeer.HandshakeOpts{WTxIDRelay: true, SendAddrV2: true},
			wantSent: []string{"version", "wtxidrelay", "sendaddrv2", "verack"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			p := fakepeer.Listen(t, &wire.Regtest, fakepeer.Options{})
			cl := dial(t, p)
			ourVersion := &wire.Version{Protocol: 70016, Nonce: 42, UserAgent: "/client/"}
			type result struct {
				v   *wire.Version
				c   *fakepeer.Conn
				err error
			}
			done := make(chan result, 1)
			go func() {
				c, err := p.Accept(ctx)
				if err != nil {
					done <- result{err: err}
					return
				}
				v, err := c.Handshake(ctx, tt.opts)
				done <- result{v, c, err}
			}()
			if tt.opts.VersionFirst {
				if got := cl.next(); got.Command() != wire.CmdVersion {
					t.Fatalf("first message from the fake peer: got %s, want version", got.Command())
				}
				cl.send(ourVersion, &wire.WTxIDRelay{}, &wire.SendAddrV2{}, &wire.Verack{})
				if got, want := cl.commands(len(tt.wantSent)-1), tt.wantSent[1:]; !slices.Equal(got, want) {
					t.Errorf("fake peer sent %v after its version, want %v", got, want)
				}
			} else {
				cl.send(ourVersion, &wire.WTxIDRelay{}, &wire.SendAddrV2{}, &wire.Verack{})
				if got, want := cl.commands(len(tt.wantSent)), tt.wantSent; !slices.Equal(got, want) {
					t.Errorf("fake peer sent %v, want %v", got, want)
				}
			}
			r := <-done
			if r.err != nil {
				t.Fatalf("Handshake: %v", r.err)
			}
			if r.v.Nonce != 42 || r.v.UserAgent != "/client/" {
				t.Errorf("Handshake returned nonce %d, user agent %q; want 42, /client/", r.v.Nonce, r.v.UserAgent)
			}
			if got, want := r.c.Commands(), []string{"version", "wtxidrelay", "sendaddrv2", "verack"}; !slices.Equal(got, want) {
				t.Errorf("Commands() = %v, want %v", got, want)
			}
			if got := p.Accepted(); got != 1 {
				t.Errorf("Accepted() = %d, want 1", got)
			}
		})
	}
}

func TestHandshakeStrictness(t *testing.T) {
	for _, lenient := range []bool{false, true} {
		t.Run(map[bool]string{false: "strict", true: "lenient"}[lenient], func(t *testing.T) {
			ctx := testCtx(t)
			p := fakepeer.Listen(t, &wire.Regtest, fakepeer.Options{})
			cl := dial(t, p)
			cl.send(&wire.Version{Protocol: 70016, Nonce: 1}, &wire.Ping{Nonce: 7, HasNonce: true}, &wire.Verack{})
			c, err := p.Accept(ctx)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Handshake(ctx, fakepeer.HandshakeOpts{Lenient: lenient})
			if lenient {
				if err != nil {
					t.Fatalf("lenient Handshake: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "sent ping before its verack") {
				t.Fatalf("strict Handshake error = %v, want one about a ping before verack", err)
			}
		})
	}
}

func TestNextStopsWithContextAndConnSurvives(t *testing.T) {
	ctx := testCtx(t)
	p := fakepeer.Listen(t, &wire.Regtest, fakepeer.Options{})
	cl := dial(t, p)
	c, err := p.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	if _, err := c.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next with nothing to read: got %v, want context.DeadlineExceeded", err)
	}
	cl.send(&wire.Ping{Nonce: 9, HasNonce: true})
	m, err := c.Expect(ctx, wire.CmdPing)
	if err != nil {
		t.Fatalf("Expect after a cancelled Next: %v", err)
	}
	if got := m.(*wire.Ping).Nonce; got != 9 {
		t.Errorf("ping nonce = %d, want 9", got)
	}
	if err := c.Send(ctx, &wire.Pong{Nonce: 9}); err != nil {
		t.Fatal(err)
	}
	if got := cl.next(); got.Command() != wire.CmdPong || got.(*wire.Pong).Nonce != 9 {
		t.Errorf("client got %v, want pong 9", got)
	}
}

func TestExpectWrongCommand(t *testing.T) {
	ctx := testCtx(t)
	p := fakepeer.Listen(t, &wire.Regtest, fakepeer.Options{})
	cl := dial(t, p)
	c, err := p.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cl.send(&wire.GetAddr{}, &wire.Ping{Nonce: 1, HasNonce: true}, &wire.Verack{})
	if _, err := c.Expect(ctx, wire.CmdPing); err == nil || !strings.Contains(err.Error(), "got getaddr") {
		t.Errorf("Expect(ping) on a getaddr: got %v, want an error naming getaddr", err)
	}
	if _, err := c.WaitFor(ctx, wire.CmdVerack); err != nil {
		t.Errorf("WaitFor(verack): %v", err)
	}
	if got, want := c.Commands(), []string{"getaddr", "ping", "verack"}; !slices.Equal(got, want) {
		t.Errorf("Commands() = %v, want %v", got, want)
	}
}

func TestBadChecksumIsRecorded(t *testing.T) {
	ctx := testCtx(t)
	p := fakepeer.Listen(t, &wire.Regtest, fakepeer.Options{})
	cl := dial(t, p)
	c, err := p.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cl.raw(fakepeer.BadChecksum(wire.Regtest.Magic, &wire.Ping{Nonce: 3, HasNonce: true}))
	if _, err := c.Next(ctx); !errors.Is(err, wire.ErrChecksum) {
		t.Fatalf("Next on a bad checksum: got %v, want wire.ErrChecksum", err)
	}
	rec := c.Received()
	if len(rec) != 1 || rec[0].Command() != wire.CmdPing || rec[0].Message != nil || !errors.Is(rec[0].Err, wire.ErrChecksum) {
		t.Errorf("Received() = %+v, want one ping with a checksum error", rec)
	}
}

func TestExpectClosed(t *testing.T) {
	ctx := testCtx(t)
	p := fakepeer.Listen(t, &wire.Regtest, fakepeer.Options{})
	cl := dial(t, p)
	c, err := p.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cl.send(&wire.Verack{})
	cl.nc.Close()
	if err := c.ExpectClosed(ctx); err != nil {
		t.Fatalf("ExpectClosed: %v", err)
	}
	if got, want := c.Commands(), []string{"verack"}; !slices.Equal(got, want) {
		t.Errorf("Commands() = %v, want %v", got, want)
	}
}

func TestHandlerServesEveryConnection(t *testing.T) {
	p := fakepeer.Listen(t, &wire.Regtest, fakepeer.Options{
		Handler: func(ctx context.Context, c *fakepeer.Conn) {
			for {
				m, err := c.Next(ctx)
				if err != nil {
					return
				}
				if ping, ok := m.(*wire.Ping); ok {
					if c.Send(ctx, &wire.Pong{Nonce: ping.Nonce}) != nil {
						return
					}
				}
			}
		},
	})
	if _, err := p.Accept(t.Context()); err == nil {
		t.Errorf("Accept with a Handler set: got nil error")
	}
	const n = 3
	for i := range uint64(n) {
		cl := dial(t, p)
		cl.send(&wire.Ping{Nonce: i, HasNonce: true})
		if got := cl.next(); got.Command() != wire.CmdPong || got.(*wire.Pong).Nonce != i {
			t.Errorf("connection %d: got %v, want pong %d", i, got, i)
		}
	}
	if got := p.Accepted(); got != n {
		t.Errorf("Accepted() = %d, want %d", got, n)
	}
	// Close must end the handlers blocked in Next (goleak checks it).
	p.Close()
}

func TestCloseUnblocksAccept(t *testing.T) {
	p := fakepeer.Listen(t, &wire.Regtest, fakepeer.Options{})
	errc := make(chan error, 1)
	go func() {
		_, err := p.Accept(context.Background())
		errc <- err
	}()
	p.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close: got %v, want net.ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Accept still blocked 2s after Close")
	}
	if _, err := net.DialTimeout("tcp", p.Addr().String(), time.Second); err == nil {
		t.Errorf("dial after Close succeeded, want the listener closed")
	}
}
