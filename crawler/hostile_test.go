package crawler

import (
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btcpipe/btcpipe/internal/simnet"
	"github.com/btcpipe/btcpipe/peer"
	"github.com/btcpipe/btcpipe/stages"
	"github.com/btcpipe/btcpipe/wire"
)

// badBlock is one 4 MB block frame with a bad checksum, shared by every
// streamer (so that the test's own heap does not hold one each).
var badBlock = sync.OnceValue(func() []byte {
	b := wire.AppendFrame(nil, wire.Regtest.Magic, wire.CmdBlock, make([]byte, wire.MaxPayload))
	b[20] ^= 0xff
	return b
})

// blockStreamer is a peer that completes a normal handshake and then
// streams 4 MB block frames with bad checksums until the connection ends.
func blockStreamer(t *testing.T, addr netip.Addr) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	block := badBlock()
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				go io.Copy(io.Discard, c)
				v := &wire.Version{Protocol: wire.ProtocolVersion, UserAgent: "/streamer/", Nonce: rand.Uint64(), Timestamp: time.Now().Unix()}
				hello := wire.AppendMessage(wire.AppendMessage(nil, wire.Regtest.Magic, v), wire.Regtest.Magic, &wire.Verack{})
				if _, err := c.Write(hello); err != nil {
					return
				}
				for {
					if _, err := c.Write(block); err != nil {
						return
					}
				}
			})
		}
	})
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// TestCrawlManyHostilePeers: a crawl among 100 peers that stream 4 MB
// blocks with bad checksums, and 100 honest nodes, holds the heap far below
// what the streamers send (gigabytes), because the frames nobody reads are
// skipped unread and the receive budgets bound the rest; every honest node
// is recorded reachable with its addresses, every streamer recorded.
func TestCrawlManyHostilePeers(t *testing.T) {
	if testing.Short() {
		t.Skip("streams gigabytes over loopback")
	}
	s := newSim(t, simnet.Options{})
	const n = 100
	var honest []*simnet.Node
	for range n {
		nd, err := s.Add(simnet.Spec{Kind: simnet.Good})
		if err != nil {
			t.Fatal(err)
		}
		honest = append(honest, nd)
	}
	base := s.Prefix().Addr().As4()
	var hostile []netip.AddrPort
	for i := range n {
		hostile = append(hostile, blockStreamer(t, netip.AddrFrom4([4]byte{127, base[1], 200, byte(1 + i)})))
	}
	var seeds []string
	for i, nd := range honest {
		other := honest[(i+1+rand.IntN(n-1))%n] // not itself: that would be a self-announcement
		nd.SetPeers([]wire.NetAddrV2{other.Entry(), wire.NetAddrV2FromAddrPort(hostile[rand.IntN(n)], 0, uint32(time.Now().Unix()))})
		seeds = append(seeds, nd.Addr.String())
	}
	for _, h := range hostile {
		seeds = append(seeds, h.String())
	}
	d := newDialRecorder(t, s.Prefix())
	out := newMemSink()
	process := stages.NewBudget("process", stages.DefaultProcessBudget, nil)
	cfg := Config{
		Session: peer.DefaultConfig(&wire.Regtest), Seeds: seeds, Allow: []netip.Prefix{s.Prefix()},
		Concurrency: 256, ConnectTimeout: 5 * time.Second, HandshakeTimeout: 5 * time.Second,
		GetAddrTimeout: 3 * time.Second, Quiet: 200 * time.Millisecond, Dial: d.dial, Out: out,
	}
	cfg.Pipeline.ConnBudget, cfg.Pipeline.Budget = stages.DefaultConnBudget, process
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var peak atomic.Uint64
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base0 := ms.HeapInuse
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > base0 {
					peak.Store(max(peak.Load(), ms.HeapInuse-base0))
				}
			}
		}
	})
	sum, err := c.Run(testContext(t))
	close(stop)
	sampler.Wait()
	if err != nil {
		t.Fatal(err)
	}
	_, forbidden, _, _ := d.snapshot()
	if len(forbidden) > 0 {
		t.Fatalf("dialled outside the allowlist: %v", forbidden)
	}
	rose := float64(peak.Load()) / (1 << 20)
	t.Logf("%d records, %.1f s; heap in use rose at most %.1f MiB; process budget %d bytes in use after", len(out.records), sum.Seconds, rose, process.Used())
	// 200 connections' worth of one 64 KiB read buffer and a few chunks
	// each is ~40 MiB (31 MiB measured); the streamers sent gigabytes.
	// Under the race detector sync.Pool drops slabs at random, so they are
	// made again faster than the garbage is collected (134 MiB measured).
	limit := 64.0
	if raceEnabled {
		limit = 256
	}
	if rose > limit {
		t.Errorf("heap in use rose by %.1f MiB, want under %.0f", rose, limit)
	}
	if got := process.Used(); got != 0 {
		t.Errorf("process budget: %d bytes still taken after the crawl", got)
	}
	byAddr := map[string]Record{}
	for _, r := range out.records {
		byAddr[r.Addr] = r
	}
	for _, nd := range honest {
		r, ok := byAddr[nd.Addr.String()]
		if !ok || r.Outcome != Reachable || r.AddrsReturned != 2 {
			t.Errorf("honest %s: %+v, want reachable with 2 addresses", nd.Addr, r)
		}
	}
	for _, h := range hostile {
		if _, ok := byAddr[h.String()]; !ok {
			t.Errorf("streamer %s not recorded", h)
		}
	}
}
