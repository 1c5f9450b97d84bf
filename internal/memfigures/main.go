// Command memfigures measures what hostile peers cost the real btcpipe
// binary: it runs bin/btcpipe against peers of its own on loopback and reads
// the child's peak resident set from the kernel (getrusage's ru_maxrss), as
// `make memory-figures` does. Every address it dials or lets btcpipe dial is
// in 127.0.0.0/8.
//
// Three scenarios (issue 12):
//
//   - crawl: 200 honest simulated nodes (each knowing 20 others) and 200
//     hostile ones that, after a normal handshake, stream 4 MB block frames
//     with bad checksums, crawled at concurrency 256. Checks that every
//     honest node is recorded reachable with its addresses and every
//     hostile one is recorded.
//   - node-blocks: btcpipe node against one such hostile peer for 10 s.
//   - node-ping: btcpipe node against a peer that declares a 3,999,999-byte
//     ping and sends 60 KB of it: the connection must end at the header,
//     by the per-command limit, not by a timeout.
//
// Usage:
//
//	go run ./internal/memfigures [-btcpipe bin/btcpipe] [-honest 200] [-hostile 200]
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/btcpipe/btcpipe/internal/simnet"
	"github.com/btcpipe/btcpipe/wire"
)

func main() {
	bin := flag.String("btcpipe", "bin/btcpipe", "the btcpipe binary")
	honest := flag.Int("honest", 200, "honest nodes in the crawl")
	hostile := flag.Int("hostile", 200, "hostile nodes in the crawl")
	flag.Parse()
	failed := false
	for _, sc := range []func(string) (row, error){
		func(b string) (row, error) { return crawlScenario(b, *honest, *hostile) },
		nodeBlocks,
		nodePing,
	} {
		r, err := sc(*bin)
		if err != nil {
			fmt.Fprintf(os.Stderr, "memfigures: %s: %v\n", r.name, err)
			failed = true
		}
		rows = append(rows, r)
	}
	fmt.Println()
	fmt.Println("| scenario | peak RSS | target | result |")
	fmt.Println("|---|---:|---:|---|")
	for _, r := range rows {
		verdict := "met"
		if r.peakMB >= float64(r.targetMB) || strings.HasPrefix(r.note, "FAILED") {
			verdict = "MISSED"
			failed = true
		}
		fmt.Printf("| %s | %.1f MB | < %d MB | %s; %s |\n", r.name, r.peakMB, r.targetMB, verdict, r.note)
	}
	if failed {
		os.Exit(1)
	}
}

var rows []row

type row struct {
	name     string
	peakMB   float64
	targetMB int
	note     string
}

// peakMB is the child's peak resident set in MB (ru_maxrss is in KiB).
func peakMB(ps *os.ProcessState) float64 {
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		return float64(ru.Maxrss) * 1024 / 1e6
	}
	return 0
}

// hostilePeer accepts connections at addr and, to each, completes a normal
// handshake (version, verack) and then runs stream until the connection
// fails.
type hostilePeer struct {
	ln     net.Listener
	wg     sync.WaitGroup
	stream func(c net.Conn) error
}

func listenHostile(addr string, stream func(c net.Conn) error) (*hostilePeer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	h := &hostilePeer{ln: ln, stream: stream}
	h.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.wg.Go(func() {
				defer c.Close()
				go io.Copy(io.Discard, c) // whatever btcpipe says
				v := &wire.Version{Protocol: wire.ProtocolVersion, UserAgent: "/hostile:0.1/", Nonce: rand.Uint64(), Timestamp: time.Now().Unix(),
					AddrFrom: wire.NetAddr{Addr: netip.AddrPortFrom(netip.IPv6Unspecified(), 0)}}
				hello := wire.AppendMessage(nil, wire.Regtest.Magic, v)
				hello = wire.AppendMessage(hello, wire.Regtest.Magic, &wire.Verack{})
				if _, err := c.Write(hello); err != nil {
					return
				}
				_ = h.stream(c)
			})
		}
	})
	return h, nil
}

func (h *hostilePeer) Addr() string { return h.ln.Addr().String() }
func (h *hostilePeer) Close()       { h.ln.Close(); h.wg.Wait() }

// badBlock is a 4 MB block frame whose checksum is wrong.
var badBlock = func() []byte {
	f := wire.AppendFrame(nil, wire.Regtest.Magic, wire.CmdBlock, make([]byte, wire.MaxPayload))
	f[20] ^= 0xff
	return f
}()

func streamBlocks(c net.Conn) error {
	for {
		if _, err := c.Write(badBlock); err != nil {
			return err
		}
	}
}

func crawlScenario(bin string, nHonest, nHostile int) (row, error) {
	r := row{name: fmt.Sprintf("crawl: %d honest + %d nodes streaming 4 MB bad-checksum blocks, concurrency 256", nHonest, nHostile), targetMB: 300}
	sim, err := simnet.New(simnet.Options{})
	if err != nil {
		return r, err
	}
	defer sim.Close()
	var good []*simnet.Node
	for range nHonest {
		n, err := sim.Add(simnet.Spec{Kind: simnet.Good})
		if err != nil {
			return r, err
		}
		good = append(good, n)
	}
	// Hostile peers on a /24 of another 127.X: one per address.
	base := sim.Prefix().Addr().As4()
	var hostile []*hostilePeer
	defer func() {
		for _, h := range hostile {
			h.Close()
		}
	}()
	for i := range nHostile {
		a := netip.AddrFrom4([4]byte{127, base[1] ^ 0x80, byte(1 + i/250), byte(1 + i%250)})
		h, err := listenHostile(netip.AddrPortFrom(a, 0).String(), streamBlocks)
		if err != nil {
			return r, err
		}
		hostile = append(hostile, h)
	}
	var all []wire.NetAddrV2
	for _, n := range good {
		all = append(all, n.Entry())
	}
	for _, h := range hostile {
		all = append(all, wire.NetAddrV2FromAddrPort(netip.MustParseAddrPort(h.Addr()), wire.NodeNetwork, uint32(time.Now().Unix())))
	}
	known := map[string]int{}
	for _, n := range good {
		var peers []wire.NetAddrV2
		for _, i := range rand.Perm(len(all))[:20] {
			peers = append(peers, all[i])
		}
		n.SetPeers(peers)
		known[n.Addr.String()] = len(peers)
	}
	var seeds []string
	for _, a := range all {
		seeds = append(seeds, a.String())
	}
	dir, err := os.MkdirTemp("", "memfigures-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "crawl.jsonl")
	cmd := exec.Command(bin, "crawl")
	cmd.Env = append(cleanEnv(), "BTCPIPE_NETWORK=regtest", "BTCPIPE_SEEDS="+strings.Join(seeds, ","),
		"BTCPIPE_CRAWL_ALLOW=127.0.0.0/8", "BTCPIPE_CRAWL_CONCURRENCY=256", "BTCPIPE_CRAWL_OUT="+out,
		"BTCPIPE_CRAWL_PROGRESS_INTERVAL=0", "BTCPIPE_LOG_LEVEL=warn")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return r, fmt.Errorf("crawl: %v\n%s", err, stderr.String())
	}
	r.peakMB = peakMB(cmd.ProcessState)
	took := time.Since(start)
	recs, err := readRecords(out)
	if err != nil {
		return r, err
	}
	var bad []string
	honestOK := 0
	for _, n := range good {
		rec, ok := recs[n.Addr.String()]
		switch {
		case !ok:
			bad = append(bad, n.Addr.String()+" not recorded")
		case rec.Outcome != "reachable" || rec.AddrsReturned != known[n.Addr.String()]:
			bad = append(bad, fmt.Sprintf("%s: %s with %d addresses, want reachable with %d", n.Addr, rec.Outcome, rec.AddrsReturned, known[n.Addr.String()]))
		default:
			honestOK++
		}
	}
	hostileRec := 0
	outcomes := map[string]int{}
	for _, h := range hostile {
		if rec, ok := recs[h.Addr()]; ok {
			hostileRec++
			outcomes[rec.Outcome]++
		} else {
			bad = append(bad, h.Addr()+" (hostile) not recorded")
		}
	}
	r.note = fmt.Sprintf("%s; %d/%d honest reachable with their addresses, %d/%d hostile recorded %v", took.Round(time.Second), honestOK, nHonest, hostileRec, nHostile, outcomes)
	if len(bad) > 0 {
		r.note = "FAILED: " + r.note
		return r, fmt.Errorf("%d problems, first: %s", len(bad), bad[0])
	}
	return r, nil
}

type record struct {
	Addr          string `json:"addr"`
	Outcome       string `json:"outcome"`
	AddrsReturned int    `json:"addrs_returned"`
	Type          string `json:"type"`
}

func readRecords(path string) (map[string]record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	recs := map[string]record{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, err
		}
		if r.Type == "node" {
			recs[r.Addr] = r
		}
	}
	return recs, sc.Err()
}

// runNode runs btcpipe node against peer until stop says so (or 30 s),
// then SIGTERM; it returns the JSON log lines and the process state.
func runNode(bin, peer string, stop func(logs string) bool) (string, *os.ProcessState, error) {
	cmd := exec.Command(bin, "node")
	cmd.Env = append(cleanEnv(), "BTCPIPE_NETWORK=regtest", "BTCPIPE_PEER="+peer, "BTCPIPE_LOG_FORMAT=json", "BTCPIPE_BACKOFF_MIN=10s")
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && !stop(logs.String()) {
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	return logs.String(), cmd.ProcessState, err
}

func nodeBlocks(bin string) (row, error) {
	r := row{name: "node: one peer streaming 4 MB bad-checksum blocks, 10 s", targetMB: 40}
	h, err := listenHostile("127.0.0.1:0", streamBlocks)
	if err != nil {
		return r, err
	}
	defer h.Close()
	start := time.Now()
	logs, ps, err := runNode(bin, h.Addr(), func(string) bool { return time.Since(start) > 10*time.Second })
	if ps == nil {
		return r, err
	}
	r.peakMB = peakMB(ps)
	r.note = "connected throughout: " + fmt.Sprint(!strings.Contains(logs, "connection lost"))
	if !strings.Contains(logs, "handshake complete") {
		r.note = "FAILED: no handshake"
		return r, errors.New("no handshake:\n" + logs)
	}
	return r, nil
}

func nodePing(bin string) (row, error) {
	r := row{name: "node: a peer declares a 3,999,999-byte ping and sends 60 KB of it", targetMB: 40}
	sent := make(chan time.Time, 1)
	h, err := listenHostile("127.0.0.1:0", func(c net.Conn) error {
		hdr := wire.AppendFrame(nil, wire.Regtest.Magic, wire.CmdPing, nil)[:wire.HeaderSize]
		hdr[16], hdr[17], hdr[18], hdr[19] = 0xff, 0x08, 0x3d, 0x00 // 3,999,999
		if _, err := c.Write(append(hdr, make([]byte, 60_000)...)); err != nil {
			return err
		}
		select {
		case sent <- time.Now():
		default:
		}
		time.Sleep(time.Minute) // and never the rest
		return nil
	})
	if err != nil {
		return r, err
	}
	defer h.Close()
	logs, ps, err := runNode(bin, h.Addr(), func(l string) bool { return strings.Contains(l, "connection lost") })
	if ps == nil {
		return r, err
	}
	r.peakMB = peakMB(ps)
	var when time.Time
	select {
	case when = <-sent:
	default:
	}
	line := ""
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "connection lost") {
			line = l
			break
		}
	}
	if !strings.Contains(line, "payload too large") || !strings.Contains(line, "ping") {
		r.note = "FAILED: not ended by the per-command limit"
		return r, fmt.Errorf("want the connection ended by ping's limit; log:\n%s", logs)
	}
	var ev struct {
		Err  string    `json:"err"`
		Time time.Time `json:"time"`
	}
	_ = json.Unmarshal([]byte(line), &ev)
	r.note = fmt.Sprintf("ended %s after the header by the limit: %q", ev.Time.Sub(when).Round(time.Millisecond), ev.Err)
	return r, nil
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BTCPIPE_") {
			env = append(env, kv)
		}
	}
	return env
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
