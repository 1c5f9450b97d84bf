package peer_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/btcpipe/btcpipe/internal/fakepeer"
	"github.com/btcpipe/btcpipe/peer"
	"github.com/btcpipe/btcpipe/pipeline"
	"github.com/btcpipe/btcpipe/stages"
	"github.com/btcpipe/btcpipe/wire"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func nullLog() *logrus.Entry {
	l, _ := logtest.NewNullLogger()
	return logrus.NewEntry(l)
}

// testConfig is a session config with short timeouts, for regtest.
func testConfig() peer.Config {
	cfg := peer.DefaultConfig(&wire.Regtest)
	cfg.HandshakeTimeout = 2 * time.Second
	cfg.PingInterval = time.Minute
	cfg.PingTimeout = time.Minute
	return cfg
}

// session is one Session running in a pipeline over loopback TCP to a
// fake peer.
type session struct {
	addr     netip.AddrPort // the fake peer's
	fc       *fakepeer.Conn
	sess     *peer.Session
	counters *pipeline.Counters
	done     chan error // Run's result

	mu         sync.Mutex
	handshakes []peer.Info
	pongs      []time.Duration
	addrs      [][]wire.NetAddrV2
}

// dialSession connects to a new fake peer. When before is set, it runs on
// the fake peer's side before the pipeline starts.
func dialSession(t *testing.T, ctx context.Context, cfg peer.Config, before func(*fakepeer.Conn)) *session {
	t.Helper()
	p := fakepeer.Listen(t, &wire.Regtest, fakepeer.Options{})
	conn, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fc, err := p.Accept(ctx)
	if err != nil {
		conn.Close()
		t.Fatal(err)
	}
	if before != nil {
		before(fc)
	}
	s := &session{addr: p.Addr(), fc: fc, counters: new(pipeline.Counters), done: make(chan error, 1)}
	hooks := peer.Hooks{
		Handshake: func(i peer.Info) { s.mu.Lock(); s.handshakes = append(s.handshakes, i); s.mu.Unlock() },
		Pong:      func(d time.Duration) { s.mu.Lock(); s.pongs = append(s.pongs, d); s.mu.Unlock() },
		Addrs: func(l []wire.NetAddrV2) {
			s.mu.Lock()
			s.addrs = append(s.addrs, slices.Clone(l))
			s.mu.Unlock()
		},
	}
	s.sess = peer.NewSession(cfg, p.Addr(), nullLog(), hooks, nil)
	pl, err := pipeline.New(conn, conn, conn, s.sess, pipeline.Config{
		Options: stages.Options{Peer: p.Addr().String(), Magic: wire.Regtest.Magic, Observer: s.counters},
	})
	if err != nil {
		conn.Close()
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	go func() { s.done <- pl.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		<-s.done // idempotent enough: the channel is buffered and read once here at most
	})
	return s
}

// result waits for Run's result, and puts it back for the cleanup.
func (s *session) result(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.done:
		s.done <- err
		return err
	case <-time.After(3 * time.Second):
		t.Fatal("the session did not end within 3s")
		return nil
	}
}

// handshake completes the handshake from the fake peer's side, and waits
// for what the session sends once it is done (getaddr and its first ping).
func (s *session) handshake(t *testing.T, ctx context.Context, o fakepeer.HandshakeOpts) *wire.Version {
	t.Helper()
	v, err := s.fc.Handshake(ctx, o)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if _, err := s.fc.WaitFor(ctx, wire.CmdPing); err != nil {
		t.Fatalf("waiting for our first ping: %v", err)
	}
	return v
}

func TestHandshakeOrder(t *testing.T) {
	tests := []struct {
		name         string
		versionFirst bool // the peer's version arrives before ours is sent
		protocol     int32
		sendAddrV2   bool
		getAddr      bool
		pingFirst    bool // the peer pings before its version
		want         []string
	}{
		{name: "ours first", protocol: 70016, sendAddrV2: true, getAddr: true,
			want: []string{"version", "wtxidrelay", "sendaddrv2", "verack", "getaddr", "ping"}},
		{name: "theirs first", versionFirst: true, protocol: 70016, sendAddrV2: true, getAddr: true,
			want: []string{"version", "wtxidrelay", "sendaddrv2", "verack", "getaddr", "ping"}},
		{name: "no sendaddrv2", protocol: 70016, getAddr: true,
			want: []string{"version", "wtxidrelay", "verack", "getaddr", "ping"}},
		{name: "theirs first, no sendaddrv2", versionFirst: true, protocol: 70016, getAddr: true,
			want: []string{"version", "wtxidrelay", "verack", "getaddr", "ping"}},
		{name: "peer before BIP339/155", protocol: 70015, sendAddrV2: true, getAddr: true,
			want: []string{"version", "verack", "getaddr", "ping"}},
		{name: "theirs first, no getaddr", versionFirst: true, protocol: 70016, sendAddrV2: true,
			want: []string{"version", "wtxidrelay", "sendaddrv2", "verack", "ping"}},
		{name: "ping before their version is not answered", versionFirst: true, pingFirst: true, protocol: 70016, sendAddrV2: true, getAddr: true,
			want: []string{"version", "wtxidrelay", "sendaddrv2", "verack", "getaddr", "ping"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			cfg := testConfig()
			cfg.SendAddrV2, cfg.GetAddr = tt.sendAddrV2, tt.getAddr
			opts := fakepeer.HandshakeOpts{Protocol: tt.protocol, UserAgent: "/fake:1.0/"}
			var theirs *wire.Version
			s := dialSession(t, ctx, cfg, func(fc *fakepeer.Conn) {
				if tt.pingFirst {
					if err := fc.Send(ctx, &wire.Ping{Nonce: 99, HasNonce: true}); err != nil {
						t.Fatal(err)
					}
				}
				if tt.versionFirst {
					theirs = fc.Version(opts)
					if err := fc.Send(ctx, theirs); err != nil {
						t.Fatal(err)
					}
				}
			})
			fc := s.fc
			ours, err := fc.Expect(ctx, wire.CmdVersion)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.versionFirst {
				theirs = fc.Version(opts)
				if err := fc.Send(ctx, theirs); err != nil {
					t.Fatal(err)
				}
			}
			if err := fc.Send(ctx, &wire.Verack{}); err != nil {
				t.Fatal(err)
			}
			if _, err := fc.WaitFor(ctx, wire.CmdPing); err != nil {
				t.Fatal(err)
			}
			if got := fc.Commands(); !slices.Equal(got, tt.want) {
				t.Errorf("we sent %v, want %v", got, tt.want)
			}
			select {
			case <-s.sess.HandshakeDone():
			case <-ctx.Done():
				t.Fatal("HandshakeDone not closed")
			}

			v := ours.(*wire.Version)
			if v.Protocol != wire.ProtocolVersion || v.Services != 0 || v.StartHeight != 0 || v.Relay || v.Nonce == 0 {
				t.Errorf("our version: protocol %d, services %d, height %d, relay %v, nonce %d; want %d, 0, 0, false, non-zero",
					v.Protocol, v.Services, v.StartHeight, v.Relay, v.Nonce, wire.ProtocolVersion)
			}
			if v.UserAgent != cfg.UserAgent {
				t.Errorf("our user agent %q, want %q", v.UserAgent, cfg.UserAgent)
			}
			if v.AddrRecv.Addr != s.addr {
				t.Errorf("our version's addr_recv is %v, want the peer's address %v", v.AddrRecv.Addr, s.addr)
			}
			s.mu.Lock()
			hs := slices.Clone(s.handshakes)
			s.mu.Unlock()
			if len(hs) != 1 || hs[0].Version.UserAgent != "/fake:1.0/" || hs[0].Version.Nonce != theirs.Nonce {
				t.Errorf("Hooks.Handshake got %+v, want one call with the peer's version", hs)
			}
			if info := s.sess.Info(); info.Version.Protocol != tt.protocol {
				t.Errorf("Info().Version.Protocol = %d, want %d", info.Version.Protocol, tt.protocol)
			}
		})
	}
}

func TestSessionRefuses(t *testing.T) {
	tests := []struct {
		name      string
		cfg       func(*peer.Config)
		script    func(t *testing.T, ctx context.Context, s *session)
		wantErr   error
		inVersion bool     // the error comes from handling the peer's version (a dispatcher *stages.Error)
		wantSent  []string // what we sent, exactly
		// sentPrefix: what we queued last may not be written before the
		// error closes the connection; we sent a prefix of wantSent.
		sentPrefix bool
	}{
		{
			name: "version too old",
			script: func(t *testing.T, ctx context.Context, s *session) {
				mustExpect(t, ctx, s.fc, wire.CmdVersion)
				mustSend(t, ctx, s.fc, s.fc.Version(fakepeer.HandshakeOpts{Protocol: 60002}), &wire.Verack{})
			},
			wantErr: peer.ErrVersionTooOld, inVersion: true, wantSent: []string{"version"},
		},
		{
			name: "self-connection",
			script: func(t *testing.T, ctx context.Context, s *session) {
				ours := mustExpect(t, ctx, s.fc, wire.CmdVersion).(*wire.Version)
				mustSend(t, ctx, s.fc, s.fc.Version(fakepeer.HandshakeOpts{Nonce: ours.Nonce}))
			},
			wantErr: peer.ErrSelfConnection, inVersion: true, wantSent: []string{"version"},
		},
		{
			name: "duplicate version",
			script: func(t *testing.T, ctx context.Context, s *session) {
				s.handshake(t, ctx, fakepeer.HandshakeOpts{})
				mustSend(t, ctx, s.fc, s.fc.Version(fakepeer.HandshakeOpts{}))
			},
			wantErr: peer.ErrDuplicateVersion, inVersion: true,
			wantSent: []string{"version", "wtxidrelay", "sendaddrv2", "verack", "getaddr", "ping"},
		},
		{
			name: "duplicate version before the handshake completes",
			script: func(t *testing.T, ctx context.Context, s *session) {
				mustExpect(t, ctx, s.fc, wire.CmdVersion)
				v := s.fc.Version(fakepeer.HandshakeOpts{})
				mustSend(t, ctx, s.fc, v, v)
			},
			wantErr: peer.ErrDuplicateVersion, inVersion: true, sentPrefix: true,
			wantSent: []string{"version", "wtxidrelay", "sendaddrv2", "verack"},
		},
		{
			name: "handshake timeout: silent peer",
			cfg:  func(c *peer.Config) { c.HandshakeTimeout = 100 * time.Millisecond },
			script: func(t *testing.T, ctx context.Context, s *session) {
				mustExpect(t, ctx, s.fc, wire.CmdVersion)
			},
			wantErr: peer.ErrHandshakeTimeout, wantSent: []string{"version"},
		},
		{
			name: "handshake timeout: no verack",
			cfg:  func(c *peer.Config) { c.HandshakeTimeout = 100 * time.Millisecond },
			script: func(t *testing.T, ctx context.Context, s *session) {
				mustExpect(t, ctx, s.fc, wire.CmdVersion)
				mustSend(t, ctx, s.fc, s.fc.Version(fakepeer.HandshakeOpts{}))
			},
			wantErr: peer.ErrHandshakeTimeout, sentPrefix: true,
			wantSent: []string{"version", "wtxidrelay", "sendaddrv2", "verack"},
		},
		{
			name: "ping timeout",
			cfg:  func(c *peer.Config) { c.PingTimeout = 100 * time.Millisecond },
			script: func(t *testing.T, ctx context.Context, s *session) {
				s.handshake(t, ctx, fakepeer.HandshakeOpts{})
				// A pong with the wrong nonce does not count.
				mustSend(t, ctx, s.fc, &wire.Pong{Nonce: 12345})
			},
			wantErr:  peer.ErrPingTimeout,
			wantSent: []string{"version", "wtxidrelay", "sendaddrv2", "verack", "getaddr", "ping"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			cfg := testConfig()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			s := dialSession(t, ctx, cfg, nil)
			tt.script(t, ctx, s)
			err := s.result(t)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Run = %v, want it to wrap %v", err, tt.wantErr)
			}
			var se *stages.Error
			if tt.inVersion && (!errors.As(err, &se) || se.Stage != stages.StageDispatcher ||
				se.Command != wire.CmdVersion || se.Peer != s.addr.String()) {
				t.Errorf("Run = %#v, want a dispatcher *stages.Error naming peer %s and command version", err, s.addr)
			}
			if err := s.fc.ExpectClosed(ctx); err != nil {
				t.Errorf("the connection was not closed: %v", err)
			}
			got := s.fc.Commands()
			switch {
			case tt.sentPrefix:
				if len(got) == 0 || len(got) > len(tt.wantSent) || !slices.Equal(got, tt.wantSent[:len(got)]) {
					t.Errorf("we sent %v, want a non-empty prefix of %v", got, tt.wantSent)
				}
			case !slices.Equal(got, tt.wantSent):
				t.Errorf("we sent %v, want %v", got, tt.wantSent)
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if len(s.handshakes) > 0 && tt.inVersion && tt.wantErr != peer.ErrDuplicateVersion {
				t.Errorf("Hooks.Handshake was called for a refused peer")
			}
		})
	}
}

func mustSend(t *testing.T, ctx context.Context, fc *fakepeer.Conn, ms ...wire.Message) {
	t.Helper()
	for _, m := range ms {
		if err := fc.Send(ctx, m); err != nil {
			t.Fatalf("sending %s: %v", m.Command(), err)
		}
	}
}

func mustExpect(t *testing.T, ctx context.Context, fc *fakepeer.Conn, cmd string) wire.Message {
	t.Helper()
	m, err := fc.Expect(ctx, cmd)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// pong waits for the next pong, skipping our pings.
func pong(t *testing.T, ctx context.Context, fc *fakepeer.Conn) uint64 {
	t.Helper()
	m, err := fc.WaitFor(ctx, wire.CmdPong)
	if err != nil {
		t.Fatal(err)
	}
	return m.(*wire.Pong).Nonce
}

func TestSessionAnswersPings(t *testing.T) {
	ctx := testCtx(t)
	s := dialSession(t, ctx, testConfig(), nil)
	s.handshake(t, ctx, fakepeer.HandshakeOpts{})
	for _, nonce := range []uint64{0, 1, 0xfedcba9876543210, ^uint64(0)} {
		mustSend(t, ctx, s.fc, &wire.Ping{Nonce: nonce, HasNonce: true})
		if got := pong(t, ctx, s.fc); got != nonce {
			t.Errorf("pong nonce %#x, want %#x", got, nonce)
		}
	}
}

func TestSessionDropsBadChecksum(t *testing.T) {
	ctx := testCtx(t)
	s := dialSession(t, ctx, testConfig(), nil)
	s.handshake(t, ctx, fakepeer.HandshakeOpts{})
	if err := s.fc.SendRaw(ctx, fakepeer.BadChecksum(wire.Regtest.Magic, &wire.Ping{Nonce: 5, HasNonce: true})); err != nil {
		t.Fatal(err)
	}
	mustSend(t, ctx, s.fc, &wire.Ping{Nonce: 6, HasNonce: true})
	if got := pong(t, ctx, s.fc); got != 6 {
		t.Errorf("first pong after a damaged ping 5 and a ping 6: nonce %d, want 6", got)
	}
	if got := s.counters.ChecksumFailures.Load(); got != 1 {
		t.Errorf("Counters.ChecksumFailures = %d, want 1", got)
	}
	// Still up: another ping is answered.
	mustSend(t, ctx, s.fc, &wire.Ping{Nonce: 7, HasNonce: true})
	if got := pong(t, ctx, s.fc); got != 7 {
		t.Errorf("pong nonce %d, want 7", got)
	}
}

// TestSessionPingsEveryInterval: our pings go out every PingInterval while
// each is answered, each answer reported with its round trip; a pong with
// a wrong nonce is ignored.
func TestSessionPingsEveryInterval(t *testing.T) {
	ctx := testCtx(t)
	cfg := testConfig()
	cfg.PingInterval = 20 * time.Millisecond
	cfg.PingTimeout = time.Second
	s := dialSession(t, ctx, cfg, nil)
	if _, err := s.fc.Handshake(ctx, fakepeer.HandshakeOpts{}); err != nil {
		t.Fatal(err)
	}
	const n = 3
	for range n {
		m, err := s.fc.WaitFor(ctx, wire.CmdPing)
		if err != nil {
			t.Fatal(err)
		}
		nonce := m.(*wire.Ping).Nonce
		mustSend(t, ctx, s.fc, &wire.Pong{Nonce: nonce + 1}, &wire.Pong{Nonce: nonce})
	}
	// The nth answer is reported before the next ping goes out.
	if _, err := s.fc.WaitFor(ctx, wire.CmdPing); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pongs) != n {
		t.Fatalf("Hooks.Pong called %d times, want %d", len(s.pongs), n)
	}
	for i, rtt := range s.pongs {
		if rtt <= 0 || rtt > 3*time.Second {
			t.Errorf("round trip %d = %s, want a positive duration under 3s", i, rtt)
		}
	}
}

func TestSessionReportsAddrs(t *testing.T) {
	ctx := testCtx(t)
	s := dialSession(t, ctx, testConfig(), nil)
	s.handshake(t, ctx, fakepeer.HandshakeOpts{})
	ap := netip.MustParseAddrPort
	mustSend(t, ctx, s.fc,
		&wire.Addr{List: []wire.TimedNetAddr{
			{Time: 10, NetAddr: wire.NetAddr{Services: 1, Addr: ap("1.2.3.4:8333")}},
			// Not addresses, as Bitcoin Core reads addr: OnionCat (Tor
			// v2), Core's internal prefix, the unspecified addresses.
			{Time: 10, NetAddr: wire.NetAddr{Addr: ap("[fd87:d87e:eb43::1]:8333")}},
			{Time: 10, NetAddr: wire.NetAddr{Addr: ap("[fd6b:88c0:8724::1]:8333")}},
			{Time: 10, NetAddr: wire.NetAddr{Addr: ap("[::]:8333")}},
			{Time: 10, NetAddr: wire.NetAddr{Addr: ap("0.0.0.0:8333")}},
			{Time: 11, NetAddr: wire.NetAddr{Services: 1, Addr: ap("[2001:db8::2]:18444")}},
		}},
		&wire.AddrV2{List: []wire.NetAddrV2{wire.NetAddrV2FromAddrPort(ap("9.9.9.9:8333"), 0, 12)}},
		&wire.Ping{Nonce: 1, HasNonce: true})
	pong(t, ctx, s.fc) // handled in order: the addrs were before
	s.mu.Lock()
	defer s.mu.Unlock()
	var got [][]string
	for _, l := range s.addrs {
		var ss []string
		for _, a := range l {
			ss = append(ss, a.String())
		}
		got = append(got, ss)
	}
	want := [][]string{{"1.2.3.4:8333", "[2001:db8::2]:18444"}, {"9.9.9.9:8333"}}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("Hooks.Addrs got %v, want %v", got, want)
	}
}

// recordSend is a stages.Sender that records the commands sent, and
// closes pinged at the first ping.
type recordSend struct {
	mu     sync.Mutex
	cmds   []string
	pinged chan struct{}
}

func (r *recordSend) send(ctx context.Context, m wire.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cmds = append(r.cmds, m.Command())
	if m.Command() == wire.CmdPing && !slices.Contains(r.cmds[:len(r.cmds)-1], wire.CmdPing) {
		close(r.pinged)
	}
	return nil
}

func (r *recordSend) commands() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.cmds)
}

// TestSessionVersionBeforeStart: the peer's version can be decoded and
// handled before Start has sent ours (it was already waiting in the socket
// when the pipeline started). Our version must still go first: a strict
// peer (btcd) reads anything before our version as a protocol violation.
func TestSessionVersionBeforeStart(t *testing.T) {
	ctx := testCtx(t)
	cfg := testConfig()
	s := peer.NewSession(cfg, netip.MustParseAddrPort("127.0.0.1:18444"), nullLog(), peer.Hooks{}, nil)
	rec := &recordSend{pinged: make(chan struct{})}
	handled := make(chan error, 1)
	go func() {
		handled <- s.Handle(ctx, &wire.Version{Protocol: 70016, Nonce: 7}, rec.send)
	}()
	select {
	case err := <-handled: // handled at once (it must not have sent anything before our version)
		if err != nil {
			t.Fatalf("Handle(version) = %v", err)
		}
		handled <- nil
	case <-time.After(50 * time.Millisecond): // waiting for Start's version
	}
	startCtx, stop := context.WithCancel(ctx)
	started := make(chan error, 1)
	go func() { started <- s.Start(startCtx, rec.send) }()
	if err := <-handled; err != nil {
		t.Fatalf("Handle(version) = %v", err)
	}
	if err := s.Handle(ctx, &wire.Verack{}, rec.send); err != nil {
		t.Fatal(err)
	}
	select {
	case <-rec.pinged: // sent once the handshake is done
	case <-ctx.Done():
		t.Fatal("no ping after the handshake")
	}
	stop()
	if err := <-started; !errors.Is(err, context.Canceled) {
		t.Errorf("Start = %v, want context.Canceled", err)
	}
	got := rec.commands()
	if want := []string{"version", "wtxidrelay", "sendaddrv2", "verack", "getaddr", "ping"}; !slices.Equal(got, want) {
		t.Errorf("we sent %v, want %v", got, want)
	}
}
