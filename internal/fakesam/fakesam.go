// Package fakesam is a fake I2P SAM v3.1 bridge for tests, on loopback: it
// speaks the commands Bitcoin Core and netreach use (HELLO VERSION,
// SESSION CREATE STYLE=STREAM DESTINATION=TRANSIENT, NAMING LOOKUP,
// STREAM CONNECT), maps made-up destinations to loopback addresses of
// simulated nodes, records every command line with the connection it came
// on, and can answer any RESULT= code instead, or drop every session (close
// their control connections, as a restarted router does).
//
// A session lives as long as the control connection that created it, as in
// SAM: a STREAM CONNECT naming a session that is gone gets INVALID_ID.
//
// A Bridge closes when its test ends, or on Close, which closes every
// connection and waits for every goroutine.
package fakesam

import (
	"bufio"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcpipe/btcpipe/wire"
)

var i2pB64 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-~")

// Command is one command line the bridge received.
type Command struct {
	Conn int    // the connection it came on, numbered from 1 in accept order
	Verb string // first two words: "HELLO VERSION", "SESSION CREATE", …
	Args map[string]string
	Line string
}

// Bridge is a fake SAM bridge on 127.0.0.1.
type Bridge struct {
	ln   net.Listener
	addr netip.AddrPort

	mu       sync.Mutex
	dests    map[string]string         // b32 name → destination (I2P Base64)
	targets  map[string]netip.AddrPort // destination → loopback target
	results  map[string]string         // verb or "verb name" → injected RESULT
	sessions map[string]net.Conn       // live session id → control conn
	created  []string                  // every session id created, in order
	commands []Command
	conns    map[net.Conn]struct{}
	nconn    int
	closed   bool
	closing  chan struct{} // closed by Close
	wg       sync.WaitGroup

	dialTimeout  time.Duration // guarded by mu
	sessionDelay time.Duration // guarded by mu
}

// SetSessionDelay makes the bridge wait d before it answers SESSION
// CREATE, as a router building tunnels does.
func (b *Bridge) SetSessionDelay(d time.Duration) {
	b.mu.Lock()
	b.sessionDelay = d
	b.mu.Unlock()
}

// SetDialTimeout bounds each connect to a node (default 5s).
func (b *Bridge) SetDialTimeout(d time.Duration) {
	b.mu.Lock()
	b.dialTimeout = d
	b.mu.Unlock()
}

// Start listens on 127.0.0.1 with a free port; the bridge closes when the
// test ends.
func Start(tb testing.TB) *Bridge {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("fakesam: listen: %v", err)
	}
	b := &Bridge{ln: ln, addr: ln.Addr().(*net.TCPAddr).AddrPort(),
		dests: map[string]string{}, targets: map[string]netip.AddrPort{}, results: map[string]string{},
		sessions: map[string]net.Conn{}, conns: map[net.Conn]struct{}{}, dialTimeout: 5 * time.Second,
		closing: make(chan struct{})}
	b.wg.Add(1)
	go b.acceptLoop()
	tb.Cleanup(func() { b.Close() })
	return b
}

// Addr returns the bridge's address.
func (b *Bridge) Addr() netip.AddrPort { return b.addr }

// RandomDestination returns a made-up destination (391 bytes: 387 and a
// 4-byte key certificate, in I2P Base64) and its I2P address (the SHA-256
// of its bytes, port 0).
func RandomDestination() (dest string, a wire.NetAddrV2) {
	raw := make([]byte, 391)
	for i := range raw {
		raw[i] = byte(rand.Uint32())
	}
	raw[384], raw[385], raw[386] = 5, 0, 4 // key certificate of 4 bytes
	return i2pB64.EncodeToString(raw), wire.NetAddrV2{Network: wire.NetI2P}.WithKey(sha256.Sum256(raw))
}

// AddNode makes up a destination for the node at target (a loopback
// address) and returns its I2P address.
func (b *Bridge) AddNode(target netip.AddrPort) wire.NetAddrV2 {
	if !target.Addr().Unmap().IsLoopback() {
		panic("fakesam: target " + target.String() + " is not loopback")
	}
	dest, a := RandomDestination()
	b.mu.Lock()
	b.dests[a.Host()] = dest
	b.targets[dest] = target
	b.mu.Unlock()
	return a
}

// SetLookup makes NAMING LOOKUP of name answer dest (to test a bridge
// that answers the wrong destination).
func (b *Bridge) SetLookup(name, dest string) {
	b.mu.Lock()
	b.dests[name] = dest
	b.mu.Unlock()
}

// SetResult makes the bridge answer RESULT=result to every command of verb
// ("HELLO VERSION", "SESSION CREATE", "NAMING LOOKUP", "STREAM CONNECT");
// with name set, only to NAMING LOOKUP and STREAM CONNECT of that .b32.i2p
// name. result "" or "OK" clears it.
func (b *Bridge) SetResult(verb, name, result string) {
	k := verb
	if name != "" {
		k += " " + name
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if result == "" || result == "OK" {
		delete(b.results, k)
		return
	}
	b.results[k] = result
}

// DropSessions closes the control connection of every session, as a
// restarted router does; their ids become invalid.
func (b *Bridge) DropSessions() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for id, c := range b.sessions {
		c.Close()
		delete(b.sessions, id)
	}
}

// ForgetSessions makes the bridge forget every session but keep their
// control connections open: the next STREAM CONNECT gets INVALID_ID.
func (b *Bridge) ForgetSessions() {
	b.mu.Lock()
	clear(b.sessions)
	b.mu.Unlock()
}

// Sessions returns the id of every session created so far, in order.
func (b *Bridge) Sessions() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.created...)
}

// Commands returns every command line received so far, in order.
func (b *Bridge) Commands() []Command {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Command(nil), b.commands...)
}

// Close stops the bridge, closes every connection and waits for every
// goroutine.
func (b *Bridge) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	close(b.closing)
	for c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	err := b.ln.Close()
	b.wg.Wait()
	return err
}

func (b *Bridge) track(c net.Conn) (int, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		c.Close()
		return 0, false
	}
	b.conns[c] = struct{}{}
	b.nconn++
	return b.nconn, true
}

func (b *Bridge) untrack(c net.Conn) {
	b.mu.Lock()
	delete(b.conns, c)
	b.mu.Unlock()
	c.Close()
}

func (b *Bridge) acceptLoop() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		n, ok := b.track(c)
		if !ok {
			continue
		}
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			defer b.untrack(c)
			b.serve(c, n)
		}()
	}
}

// injected returns the RESULT injected for verb (and name), "" if none.
func (b *Bridge) injected(verb, name string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if r, ok := b.results[verb+" "+name]; ok && name != "" {
		return r
	}
	return b.results[verb]
}

func (b *Bridge) serve(c net.Conn, n int) {
	br := bufio.NewReader(c)
	hello := false
	session := ""
	defer func() {
		if session != "" {
			b.mu.Lock()
			if b.sessions[session] == c {
				delete(b.sessions, session)
			}
			b.mu.Unlock()
		}
	}()
	reply := func(s string) bool {
		_, err := io.WriteString(c, s+"\n")
		return err == nil
	}
	for {
		if session == "" {
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
		} else {
			c.SetReadDeadline(time.Time{}) // a control connection lives on
		}
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		cmd := parse(n, line)
		b.mu.Lock()
		b.commands = append(b.commands, cmd)
		b.mu.Unlock()
		if cmd.Verb != "HELLO VERSION" && !hello {
			reply("HELLO REPLY RESULT=I2P_ERROR MESSAGE=\"Must start with HELLO VERSION\"")
			return
		}
		switch cmd.Verb {
		case "HELLO VERSION":
			if r := b.injected(cmd.Verb, ""); r != "" {
				reply("HELLO REPLY RESULT=" + r)
				return
			}
			if cmd.Args["MIN"] > "3.1" || cmd.Args["MAX"] < "3.1" {
				reply("HELLO REPLY RESULT=NOVERSION")
				return
			}
			hello = true
			reply("HELLO REPLY RESULT=OK VERSION=3.1")
		case "SESSION CREATE":
			if r := b.injected(cmd.Verb, ""); r != "" {
				reply("SESSION STATUS RESULT=" + r + " MESSAGE=\"injected\"")
				return
			}
			id := cmd.Args["ID"]
			b.mu.Lock()
			delay := b.sessionDelay
			b.mu.Unlock()
			if delay > 0 {
				select {
				case <-time.After(delay):
				case <-b.closing:
					return
				}
			}
			b.mu.Lock()
			_, dup := b.sessions[id]
			if !dup && id != "" && session == "" {
				b.sessions[id] = c
				b.created = append(b.created, id)
			}
			b.mu.Unlock()
			switch {
			case id == "" || cmd.Args["STYLE"] != "STREAM" || cmd.Args["DESTINATION"] != "TRANSIENT" || session != "":
				reply("SESSION STATUS RESULT=I2P_ERROR MESSAGE=\"fakesam: want STYLE=STREAM ID=… DESTINATION=TRANSIENT, once\"")
				return
			case dup:
				reply("SESSION STATUS RESULT=DUPLICATED_ID")
				return
			}
			session = id
			// A transient session answers its new private key; the
			// destination is its first bytes, enough for the client.
			priv, _ := RandomDestination()
			reply("SESSION STATUS RESULT=OK DESTINATION=" + priv)
			// The connection now only holds the session open.
		case "NAMING LOOKUP":
			name := cmd.Args["NAME"]
			if r := b.injected(cmd.Verb, name); r != "" {
				reply("NAMING REPLY RESULT=" + r + " NAME=" + name)
				continue
			}
			b.mu.Lock()
			dest, ok := b.dests[strings.ToLower(name)]
			b.mu.Unlock()
			if !ok {
				reply("NAMING REPLY RESULT=KEY_NOT_FOUND NAME=" + name)
				continue
			}
			reply("NAMING REPLY RESULT=OK NAME=" + name + " VALUE=" + dest)
		case "STREAM CONNECT":
			dest := cmd.Args["DESTINATION"]
			b.mu.Lock()
			_, live := b.sessions[cmd.Args["ID"]]
			target, known := b.targets[dest]
			timeout := b.dialTimeout
			name := ""
			for nm, d := range b.dests {
				if d == dest {
					name = nm
				}
			}
			b.mu.Unlock()
			if r := b.injected(cmd.Verb, name); r != "" {
				reply("STREAM STATUS RESULT=" + r + " MESSAGE=\"injected\"")
				return
			}
			switch {
			case !live:
				reply("STREAM STATUS RESULT=INVALID_ID MESSAGE=\"no session " + cmd.Args["ID"] + "\"")
				return
			case !known:
				reply("STREAM STATUS RESULT=CANT_REACH_PEER")
				return
			}
			up, err := net.DialTimeout("tcp", target.String(), timeout)
			if err != nil {
				// As a router: a stream that times out is TIMEOUT, any
				// other failure CANT_REACH_PEER.
				result := "CANT_REACH_PEER"
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					result = "TIMEOUT"
				}
				reply("STREAM STATUS RESULT=" + result + " MESSAGE=\"fakesam: connect failed\"")
				return
			}
			if _, ok := b.track(up); !ok {
				return
			}
			defer b.untrack(up)
			if !reply("STREAM STATUS RESULT=OK") {
				return
			}
			c.SetReadDeadline(time.Time{})
			relay(c, br, up)
			return
		default:
			reply("SESSION STATUS RESULT=I2P_ERROR MESSAGE=\"fakesam: unknown command\"")
			return
		}
	}
}

// parse splits a command line (values are not quoted in what clients send).
func parse(n int, line string) Command {
	cmd := Command{Conn: n, Line: line, Args: map[string]string{}}
	f := strings.Fields(line)
	for i, w := range f {
		if i < 2 {
			if i == 1 {
				cmd.Verb += " "
			}
			cmd.Verb += w
			continue
		}
		k, v, _ := strings.Cut(w, "=")
		cmd.Args[k] = v
	}
	return cmd
}

// relay copies both ways (what the client sent after its command first)
// until either side ends, then closes both.
func relay(c net.Conn, br *bufio.Reader, up net.Conn) {
	done := make(chan struct{}, 2)
	go func() {
		io.Copy(up, br)
		up.Close()
		c.Close()
		done <- struct{}{}
	}()
	go func() {
		io.Copy(c, up)
		up.Close()
		c.Close()
		done <- struct{}{}
	}()
	<-done
	<-done
}
