package crawler

import (
	"context"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btcpipe/btcpipe/internal/fakepeer"
	"github.com/btcpipe/btcpipe/peer"
	"github.com/btcpipe/btcpipe/wire"
)

// publicEntries returns n addrv2 entries of public addresses (data only:
// outside the test's allowlist, never dialled).
func publicEntries(n, salt int) []wire.NetAddrV2 {
	out := make([]wire.NetAddrV2, n)
	for i := range out {
		ip := netip.AddrFrom4([4]byte{1 + byte(salt), byte(i >> 8), byte(i), 1})
		out[i] = wire.NetAddrV2FromAddrPort(netip.AddrPortFrom(ip, 8333), wire.NodeNetwork, uint32(time.Now().Unix()))
	}
	return out
}

// TestEndOfAnswer plays the getaddr answers of Bitcoin Core and btcd and
// checks that each session ends as soon as its answer is complete, by the
// rule of the package documentation, the self-announcement counted apart.
func TestEndOfAnswer(t *testing.T) {
	type script struct {
		agent string
		// early is sent right after the handshake (an old Core's
		// self-announcement); answer in reply to getaddr, before the
		// pong unless afterPong.
		early, answer [][]wire.NetAddrV2
		afterPong     bool
		noPong        bool
	}
	self := func(ap netip.AddrPort) wire.NetAddrV2 {
		return wire.NetAddrV2FromAddrPort(ap, wire.NodeNetwork, uint32(time.Now().Unix()))
	}
	tests := []struct {
		name      string
		script    func(self wire.NetAddrV2) script
		wantEnded string
		wantAddrs int
		wantMsgs  int
		wantSelf  bool
	}{
		{name: "core: one pass of 1,000 with the self-announcement inside", wantEnded: EndedAnswer, wantAddrs: 999, wantMsgs: 1, wantSelf: true,
			script: func(s wire.NetAddrV2) script {
				list := publicEntries(1000, 0)
				list[500] = s
				return script{agent: "/Satoshi:28.1.0/", answer: [][]wire.NetAddrV2{list}}
			}},
		{name: "core: a short answer", wantEnded: EndedAnswer, wantAddrs: 23, wantMsgs: 1,
			script: func(wire.NetAddrV2) script {
				return script{agent: "/Satoshi:27.0.0/", answer: [][]wire.NetAddrV2{publicEntries(23, 1)}}
			}},
		{name: "btcd: 2,500 in messages of 1,000", wantEnded: EndedAnswer, wantAddrs: 2500, wantMsgs: 3,
			script: func(wire.NetAddrV2) script {
				l := publicEntries(2500, 2)
				return script{agent: "/btcd:0.26.2/", answer: [][]wire.NetAddrV2{l[:1000], l[1000:2000], l[2000:]}}
			}},
		{name: "btcd: exactly 1,000, then the pong", wantEnded: EndedAnswer, wantAddrs: 1000, wantMsgs: 1,
			script: func(wire.NetAddrV2) script {
				return script{agent: "/btcd:0.26.2/", answer: [][]wire.NetAddrV2{publicEntries(1000, 3)}}
			}},
		{name: "nothing to send: the pong ends it", wantEnded: EndedNoAnswer,
			script: func(wire.NetAddrV2) script { return script{agent: "/Satoshi:28.1.0/"} }},
		{name: "old core: self-announcement first, the answer after the pong", wantEnded: EndedAnswer, wantAddrs: 20, wantMsgs: 1, wantSelf: true,
			script: func(s wire.NetAddrV2) script {
				return script{agent: "/Satoshi:0.21.1/", early: [][]wire.NetAddrV2{{s}}, answer: [][]wire.NetAddrV2{publicEntries(20, 4)}, afterPong: true}
			}},
		{name: "no pong, no answer: the getaddr timeout", wantEnded: EndedGetAddrTimeout,
			script: func(wire.NetAddrV2) script { return script{agent: "/odd:1.0/", noPong: true} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var addr atomic.Value // the peer's address, set before any connection
			p := fakepeer.Listen(t, &wire.Regtest, fakepeer.Options{Handler: func(ctx context.Context, c *fakepeer.Conn) {
				sc := tt.script(self(addr.Load().(netip.AddrPort)))
				if _, err := c.Handshake(ctx, fakepeer.HandshakeOpts{UserAgent: sc.agent, SendAddrV2: true, Lenient: true}); err != nil {
					return
				}
				send := func(lists [][]wire.NetAddrV2) {
					for _, l := range lists {
						if c.Send(ctx, &wire.AddrV2{List: l}) != nil {
							return
						}
					}
				}
				send(sc.early)
				for {
					m, err := c.Next(ctx)
					if err != nil {
						return
					}
					switch m := m.(type) {
					case *wire.GetAddr:
						if !sc.afterPong {
							send(sc.answer)
						}
					case *wire.Ping:
						if sc.noPong {
							continue
						}
						if c.Send(ctx, &wire.Pong{Nonce: m.Nonce}) != nil {
							return
						}
						if sc.afterPong {
							time.Sleep(200 * time.Millisecond)
							send(sc.answer)
						}
					}
				}
			}})
			addr.Store(p.Addr())
			rec := newDialRecorder(t, netip.MustParsePrefix("127.0.0.1/32"))
			sink := newMemSink()
			c, err := New(Config{
				Session: peer.DefaultConfig(&wire.Regtest), Seeds: []string{p.Addr().String()},
				Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, Dial: rec.dial,
				GetAddrTimeout: 1500 * time.Millisecond, Quiet: 5 * time.Second, Out: sink,
			})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Run(testContext(t)); err != nil {
				t.Fatal(err)
			}
			if dials, _, _, _ := rec.snapshot(); len(dials) != 1 {
				t.Fatalf("%d dials, want the one peer once", len(dials))
			}
			var r *Record
			for i := range sink.records {
				if sink.records[i].Addr == p.Addr().String() {
					r = &sink.records[i]
				}
			}
			if r == nil || r.Handshake == nil {
				t.Fatalf("no record of the peer with its handshake: %+v", r)
			}
			if r.Outcome != Reachable || r.Ended != tt.wantEnded || r.AddrsReturned != tt.wantAddrs || r.AddrMessages != tt.wantMsgs {
				t.Errorf("outcome %s, ended %q, %d addresses in %d messages; want reachable, %q, %d in %d",
					r.Outcome, r.Ended, r.AddrsReturned, r.AddrMessages, tt.wantEnded, tt.wantAddrs, tt.wantMsgs)
			}
			if got := r.SelfAnnounced != ""; got != tt.wantSelf || (got && r.SelfAnnounced != p.Addr().String()) {
				t.Errorf("self-announced %q, want it (%v) to be %s", r.SelfAnnounced, tt.wantSelf, p.Addr())
			}
		})
	}
}
