package netreach_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/btcpipe/btcpipe/internal/fakesam"
	"github.com/btcpipe/btcpipe/netreach"
)

func TestSAMDialSpeaksSAM31(t *testing.T) {
	noDNS(t)
	ctx := testCtx(t)
	node := startEcho(t)
	bridge := fakesam.Start(t)
	a := bridge.AddNode(node.addr())
	var rec dialRecorder
	sam := netreach.NewSAM(bridge.Addr().String(), rec.proxyDial)
	defer sam.Close()
	c, err := sam.Dial(ctx, a.Host())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c)
	noNames(t, rec.proxyCalls())

	cmds := bridge.Commands()
	sessions := bridge.Sessions()
	if len(sessions) != 1 {
		t.Fatalf("got sessions %v, want one", sessions)
	}
	id := sessions[0]
	if len(id) != 10 {
		t.Errorf("session id %q: want 10 characters", id)
	}
	want := []struct {
		conn int
		line string
	}{
		{1, "HELLO VERSION MIN=3.1 MAX=3.1"},
		{1, "SESSION CREATE STYLE=STREAM ID=" + id + " DESTINATION=TRANSIENT SIGNATURE_TYPE=7 inbound.quantity=1 outbound.quantity=1"},
		{2, "HELLO VERSION MIN=3.1 MAX=3.1"},
		{2, "NAMING LOOKUP NAME=" + a.Host()},
		{2, "STREAM CONNECT ID=" + id + " DESTINATION=* SILENT=false"},
	}
	if len(cmds) != len(want) {
		t.Fatalf("got %d commands %v, want %d", len(cmds), cmds, len(want))
	}
	for i, w := range want {
		line := cmds[i].Line
		if cmds[i].Verb == "STREAM CONNECT" {
			line = strings.Replace(line, "DESTINATION="+cmds[i].Args["DESTINATION"], "DESTINATION=*", 1)
			if len(cmds[i].Args["DESTINATION"]) < 500 {
				t.Errorf("STREAM CONNECT carries %q, want the full destination", cmds[i].Args["DESTINATION"])
			}
		}
		if cmds[i].Conn != w.conn || line != w.line {
			t.Errorf("command %d: got conn %d %q, want conn %d %q", i, cmds[i].Conn, line, w.conn, w.line)
		}
	}
	if got := sam.SessionID(); got != id {
		t.Errorf("SessionID() = %q, want %q", got, id)
	}
}

func TestSAMOneSessionForManyStreams(t *testing.T) {
	ctx := testCtx(t)
	node := startEcho(t)
	bridge := fakesam.Start(t)
	sam := netreach.NewSAM(bridge.Addr().String(), nil)
	defer sam.Close()
	const n = 8
	errs := make(chan error, n)
	for range n {
		a := bridge.AddNode(node.addr())
		go func() {
			c, err := sam.Dial(ctx, a.Host())
			if err == nil {
				c.Close()
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if s := bridge.Sessions(); len(s) != 1 {
		t.Errorf("got %d sessions for %d concurrent streams, want 1", len(s), n)
	}
	conns := map[int]bool{}
	for _, c := range bridge.Commands() {
		if c.Verb == "STREAM CONNECT" {
			conns[c.Conn] = true
		}
	}
	if len(conns) != n {
		t.Errorf("got STREAM CONNECTs on %d connections, want a new one for each of %d", len(conns), n)
	}
}

func TestSAMSessionRecreated(t *testing.T) {
	tests := []struct {
		name string
		lose func(b *fakesam.Bridge)
	}{
		// The router closes the control connection (a restart).
		{"control connection dropped", (*fakesam.Bridge).DropSessions},
		// The router forgets the session but the connection stays: the
		// next STREAM CONNECT gets INVALID_ID and is tried again.
		{"invalid id", (*fakesam.Bridge).ForgetSessions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			node := startEcho(t)
			bridge := fakesam.Start(t)
			a := bridge.AddNode(node.addr())
			sam := netreach.NewSAM(bridge.Addr().String(), nil)
			defer sam.Close()
			c, err := sam.Dial(ctx, a.Host())
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
			tt.lose(bridge)
			c, err = sam.Dial(ctx, a.Host())
			if err != nil {
				t.Fatalf("after the session was lost: %v", err)
			}
			defer c.Close()
			roundTrip(t, c)
			s := bridge.Sessions()
			if len(s) != 2 || s[0] == s[1] {
				t.Fatalf("got sessions %v, want two different ones", s)
			}
			var last string
			for _, c := range bridge.Commands() {
				if c.Verb == "STREAM CONNECT" {
					last = c.Args["ID"]
				}
			}
			if last != s[1] {
				t.Errorf("the last STREAM CONNECT used session %q, want the new %q", last, s[1])
			}
		})
	}
}

func TestSAMNoticesDroppedSession(t *testing.T) {
	bridge := fakesam.Start(t)
	node := startEcho(t)
	a := bridge.AddNode(node.addr())
	sam := netreach.NewSAM(bridge.Addr().String(), nil)
	defer sam.Close()
	c, err := sam.Dial(testCtx(t), a.Host())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	bridge.DropSessions()
	deadline := time.Now().Add(5 * time.Second)
	for sam.SessionID() != "" {
		if time.Now().After(deadline) {
			t.Fatal("the client did not notice within 5s that the bridge closed its session")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSAMResultsClassified(t *testing.T) {
	tests := []struct {
		verb, result string
		want         error
		wantSessions int
	}{
		{"HELLO VERSION", "NOVERSION", netreach.ErrSAMNoVersion, 0},
		{"HELLO VERSION", "I2P_ERROR", netreach.ErrSAMI2PError, 0},
		{"SESSION CREATE", "DUPLICATED_ID", netreach.ErrSAMDuplicatedID, 0},
		{"SESSION CREATE", "DUPLICATED_DEST", netreach.ErrSAMDuplicatedDest, 0},
		{"SESSION CREATE", "INVALID_KEY", netreach.ErrSAMInvalidKey, 0},
		{"NAMING LOOKUP", "KEY_NOT_FOUND", netreach.ErrSAMKeyNotFound, 1},
		{"NAMING LOOKUP", "INVALID_KEY", netreach.ErrSAMInvalidKey, 1},
		{"STREAM CONNECT", "CANT_REACH_PEER", netreach.ErrSAMCantReachPeer, 1},
		{"STREAM CONNECT", "TIMEOUT", netreach.ErrSAMTimeout, 1},
		{"STREAM CONNECT", "I2P_ERROR", netreach.ErrSAMI2PError, 1},
		{"STREAM CONNECT", "INVALID_KEY", netreach.ErrSAMInvalidKey, 1},
		// INVALID_ID: the session is made again and the connect tried
		// once more, which fails the same way here.
		{"STREAM CONNECT", "INVALID_ID", netreach.ErrSAMInvalidID, 2},
		{"STREAM CONNECT", "SOMETHING_NEW", netreach.ErrSAMUnknownResult, 1},
	}
	for _, tt := range tests {
		t.Run(tt.verb+" "+tt.result, func(t *testing.T) {
			bridge := fakesam.Start(t)
			node := startEcho(t)
			a := bridge.AddNode(node.addr())
			bridge.SetResult(tt.verb, "", tt.result)
			sam := netreach.NewSAM(bridge.Addr().String(), nil)
			defer sam.Close()
			c, err := sam.Dial(testCtx(t), a.Host())
			if err == nil {
				c.Close()
				t.Fatal("dial succeeded")
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
			var se *netreach.SAMError
			if !errors.As(err, &se) || se.Result != tt.result {
				t.Errorf("got %#v, want a *SAMError with RESULT %s", err, tt.result)
			}
			if !strings.HasPrefix(err.Error(), "i2p: ") {
				t.Errorf("message %q does not start with \"i2p: \"", err)
			}
			if got := len(bridge.Sessions()); got != tt.wantSessions {
				t.Errorf("got %d sessions, want %d", got, tt.wantSessions)
			}
		})
	}
	for _, r := range netreach.SAMResults {
		if netreach.SAMResultErr(r) == netreach.ErrSAMUnknownResult || netreach.SAMResultErr(r) == nil {
			t.Errorf("SAMResults lists %s, which SAMResultErr does not name", r)
		}
	}
}

func TestSAMFailures(t *testing.T) {
	ctx := testCtx(t)
	node := startEcho(t)
	bridge := fakesam.Start(t)
	sam := netreach.NewSAM(bridge.Addr().String(), nil)
	defer sam.Close()

	t.Run("unknown name", func(t *testing.T) {
		_, a := fakesam.RandomDestination()
		if _, err := sam.Dial(ctx, a.Host()); !errors.Is(err, netreach.ErrSAMKeyNotFound) {
			t.Errorf("got %v, want ErrSAMKeyNotFound", err)
		}
	})
	t.Run("destination of another name", func(t *testing.T) {
		a := bridge.AddNode(node.addr())
		other, _ := fakesam.RandomDestination()
		bridge.SetLookup(a.Host(), other)
		if _, err := sam.Dial(ctx, a.Host()); !errors.Is(err, netreach.ErrSAMDestMismatch) {
			t.Errorf("got %v, want ErrSAMDestMismatch", err)
		}
	})
	t.Run("destination not base64", func(t *testing.T) {
		a := bridge.AddNode(node.addr())
		bridge.SetLookup(a.Host(), "not+base64/of/i2p")
		if _, err := sam.Dial(ctx, a.Host()); !errors.Is(err, netreach.ErrSAMProtocol) {
			t.Errorf("got %v, want ErrSAMProtocol", err)
		}
	})
	t.Run("not a b32 name", func(t *testing.T) {
		if _, err := sam.Dial(ctx, "example.i2p"); err == nil {
			t.Error("dial of example.i2p succeeded")
		}
	})
	t.Run("bridge down", func(t *testing.T) {
		down := netreach.NewSAM("127.0.0.1:1", nil)
		defer down.Close()
		a := bridge.AddNode(node.addr())
		if _, err := down.Dial(ctx, a.Host()); !errors.Is(err, netreach.ErrSAMBridge) {
			t.Errorf("got %v, want ErrSAMBridge", err)
		}
	})
	t.Run("closed client", func(t *testing.T) {
		s := netreach.NewSAM(bridge.Addr().String(), nil)
		s.Close()
		a := bridge.AddNode(node.addr())
		if _, err := s.Dial(ctx, a.Host()); !errors.Is(err, netreach.ErrSAMClosed) {
			t.Errorf("got %v, want ErrSAMClosed", err)
		}
	})
}

func TestSAMHostileBridge(t *testing.T) {
	read := func(c net.Conn) {
		b := make([]byte, 1)
		for {
			if _, err := c.Read(b); err != nil || b[0] == '\n' {
				return
			}
		}
	}
	tests := []struct {
		name   string
		answer string
		want   error
	}{
		{"not sam", "HTTP/1.1 400 Bad Request\n", netreach.ErrSAMProtocol},
		{"no result", "HELLO REPLY VERSION=3.1\n", netreach.ErrSAMProtocol},
		{"unterminated quote", "HELLO REPLY RESULT=OK MESSAGE=\"abc\n", netreach.ErrSAMProtocol},
		{"endless line", strings.Repeat("A", netreach.MaxSAMLine+10), netreach.ErrSAMProtocol},
		{"closes mid-line", "HELLO REP", netreach.ErrSAMBridge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := rawProxy(t, func(c net.Conn) {
				read(c)
				c.Write([]byte(tt.answer))
			})
			sam := netreach.NewSAM(addr, nil)
			defer sam.Close()
			_, a := fakesam.RandomDestination()
			if _, err := sam.Dial(testCtx(t), a.Host()); !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// TestSAMDropDuringDials drops the session while streams are being
// opened: every dial still succeeds (each retries once with a new session),
// and only a few sessions are made.
func TestSAMDropDuringDials(t *testing.T) {
	ctx := testCtx(t)
	node := startEcho(t)
	bridge := fakesam.Start(t)
	sam := netreach.NewSAM(bridge.Addr().String(), nil)
	defer sam.Close()
	const n = 16
	addrs := make([]string, n)
	for i := range addrs {
		addrs[i] = bridge.AddNode(node.addr()).Host()
	}
	// A first stream makes the session, so the drop below never races
	// with its creation.
	c, err := sam.Dial(ctx, addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	errs := make(chan error, n)
	for i := range n {
		go func() {
			if i == n/2 {
				bridge.DropSessions()
			}
			c, err := sam.Dial(ctx, addrs[i])
			if err == nil {
				roundTrip(t, c)
				c.Close()
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if s := bridge.Sessions(); len(s) != 2 {
		t.Errorf("got %d sessions, want 2 (one drop)", len(s))
	}
}

// TestSAMSessionOutlivesShortDial: a router takes long to build a
// session; a Dial with a short ctx gives up, but the session is still made,
// once, and the next Dial uses it.
func TestSAMSessionOutlivesShortDial(t *testing.T) {
	node := startEcho(t)
	bridge := fakesam.Start(t)
	bridge.SetSessionDelay(300 * time.Millisecond)
	a := bridge.AddNode(node.addr())
	sam := netreach.NewSAM(bridge.Addr().String(), nil)
	defer sam.Close()
	short, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := sam.Dial(short, a.Host()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("short dial: got %v, want context.DeadlineExceeded", err)
	}
	c, err := sam.Dial(testCtx(t), a.Host())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c)
	if s := bridge.Sessions(); len(s) != 1 {
		t.Errorf("got %d sessions, want the one begun by the first dial", len(s))
	}
}

// TestSAMCloseDuringSessionCreation closes the client while a session is
// being made: Close returns at once and leaves no goroutine.
func TestSAMCloseDuringSessionCreation(t *testing.T) {
	bridge := fakesam.Start(t)
	bridge.SetSessionDelay(time.Minute)
	_, a := fakesam.RandomDestination()
	sam := netreach.NewSAM(bridge.Addr().String(), nil)
	short, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	sam.Dial(short, a.Host())
	begin := time.Now()
	sam.Close()
	if d := time.Since(begin); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
}
