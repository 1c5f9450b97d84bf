// Package fakepeer is a scripted fake Bitcoin peer for tests: a TCP listener
// on 127.0.0.1 that speaks btcpipe's wire package, so that a test can play the
// remote side of a connection one message at a time — complete or botch the
// handshake, send well-formed or malformed frames, and check what the node
// sends, in order.
//
// It listens only on loopback (127.0.0.1, port 0). It is built once for the
// node's tests, the crawler's simulated network and the hostile-peer suite.
//
// # Lifetime
//
// A Peer lives until its test ends (it closes itself in tb.Cleanup, and
// stops as soon as tb.Context ends) or until Close. Closing it closes the
// listener and every connection it accepted, and waits for every goroutine
// it started, handlers included, so goleak finds nothing. Each blocking Conn
// method takes a ctx and returns ctx.Err() when ctx ends first; the
// connection stays usable afterwards.
//
// # Concurrency
//
// A Conn's reading methods (Next, Expect, WaitFor, Handshake, ExpectClosed…)
// must be called from one goroutine at a time; Send and SendRaw may be called
// from another goroutine meanwhile. Received and Commands may be called from
// anywhere.
package fakepeer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/btcpipe/btcpipe/wire"
)

// Options configure a Peer.
type Options struct {
	// Handler, if set, serves every accepted connection on a goroutine of
	// its own; the connection is closed when Handler returns. ctx ends when
	// the peer closes. Accept must not be used when Handler is set.
	Handler func(ctx context.Context, c *Conn)
}

// Peer is a fake peer listening on a loopback TCP port.
type Peer struct {
	tb      testing.TB
	network *wire.Network
	opts    Options
	ln      net.Listener
	addr    netip.AddrPort

	ctx      context.Context
	cancel   context.CancelFunc
	conns    chan *Conn    // accepted connections, to Accept
	loopDone chan struct{} // closed when the accept loop has returned
	handlers sync.WaitGroup
	stopped  chan struct{} // closed once shutdown has run

	mu       sync.Mutex
	open     map[*Conn]struct{}
	accepted int
}

// Listen starts a fake peer of network on 127.0.0.1 with a free port. It
// fails the test if it cannot listen. The peer closes when the test ends.
func Listen(tb testing.TB, network *wire.Network, opts Options) *Peer {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("fakepeer: listen: %v", err)
	}
	ctx, cancel := context.WithCancel(tb.Context())
	p := &Peer{
		tb: tb, network: network, opts: opts, ln: ln,
		addr:     ln.Addr().(*net.TCPAddr).AddrPort(),
		ctx:      ctx,
		cancel:   cancel,
		conns:    make(chan *Conn),
		loopDone: make(chan struct{}),
		stopped:  make(chan struct{}),
		open:     map[*Conn]struct{}{},
	}
	context.AfterFunc(ctx, p.shutdown)
	go p.acceptLoop()
	tb.Cleanup(func() { p.Close() })
	return p
}

// Addr returns the address the peer listens on (127.0.0.1:port).
func (p *Peer) Addr() netip.AddrPort { return p.addr }

// Network returns the peer's network.
func (p *Peer) Network() *wire.Network { return p.network }

// Accepted returns how many connections the peer has accepted so far.
func (p *Peer) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// Accept returns the next connection, waiting for it until ctx ends or the
// peer closes.
func (p *Peer) Accept(ctx context.Context) (*Conn, error) {
	if p.opts.Handler != nil {
		return nil, errors.New("fakepeer: Accept with a Handler set")
	}
	select {
	case c := <-p.conns:
		return c, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-p.ctx.Done():
		return nil, net.ErrClosed
	}
}

// Close stops the peer: it closes the listener and every connection, and
// waits for the accept loop and the handlers to return. It is idempotent.
func (p *Peer) Close() error {
	p.cancel()
	<-p.stopped
	<-p.loopDone
	p.handlers.Wait()
	return nil
}

// shutdown runs once, when p.ctx ends.
func (p *Peer) shutdown() {
	defer close(p.stopped)
	p.ln.Close()
	p.mu.Lock()
	open := make([]*Conn, 0, len(p.open))
	for c := range p.open {
		open = append(open, c)
	}
	p.mu.Unlock()
	for _, c := range open {
		c.Close()
	}
}

func (p *Peer) acceptLoop() {
	defer close(p.loopDone)
	for {
		nc, err := p.ln.Accept()
		if err != nil {
			return // closed by shutdown
		}
		c := p.track(nc)
		if c == nil {
			return
		}
		if h := p.opts.Handler; h != nil {
			p.handlers.Add(1) // before loopDone closes, so never during Wait
			go func() {
				defer p.handlers.Done()
				defer c.Close()
				h(p.ctx, c)
			}()
			continue
		}
		select {
		case p.conns <- c:
		case <-p.ctx.Done():
			c.Close()
			return
		}
	}
}

// track registers a new connection, or closes it and returns nil when the
// peer is shutting down.
func (p *Peer) track(nc net.Conn) *Conn {
	c := &Conn{peer: p, nc: nc, magic: p.network.Magic}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ctx.Err() != nil {
		nc.Close()
		return nil
	}
	p.open[c] = struct{}{}
	p.accepted++
	return c
}

func (p *Peer) untrack(c *Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.open, c)
}

// Received is one frame the fake peer read from the node.
type Received struct {
	// Frame is the frame as it came; its Payload is a private copy.
	Frame wire.Frame
	// Message is the decoded message (a *wire.Raw for commands the wire
	// package does not decode), or nil when the checksum is wrong or the
	// payload does not decode; Err then says why.
	Message wire.Message
	Err     error
}

// Command returns the frame's command.
func (r Received) Command() string { return r.Frame.CommandName() }

// Conn is one accepted connection: the fake peer's side of it.
type Conn struct {
	peer  *Peer
	nc    net.Conn
	magic wire.Magic

	buf []byte // bytes read and not yet framed
	tmp []byte // read buffer

	wmu sync.Mutex // serialises writes

	mu       sync.Mutex
	received []Received
	closed   bool
}

// RemoteAddr returns the node's address.
func (c *Conn) RemoteAddr() netip.AddrPort { return c.nc.RemoteAddr().(*net.TCPAddr).AddrPort() }

// Magic returns the network magic the connection speaks.
func (c *Conn) Magic() wire.Magic { return c.magic }

// Close closes the connection. It is idempotent.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.peer.untrack(c)
	return c.nc.Close()
}

// Send encodes m as a frame of the connection's network and writes it.
func (c *Conn) Send(ctx context.Context, m wire.Message) error {
	return c.SendRaw(ctx, wire.AppendMessage(nil, c.magic, m))
}

// SendFrame writes a frame with any command and payload, and a correct
// checksum.
func (c *Conn) SendFrame(ctx context.Context, cmd string, payload []byte) error {
	return c.SendRaw(ctx, wire.AppendFrame(nil, c.magic, cmd, payload))
}

// SendRaw writes b as it is: anything at all, malformed frames included.
func (c *Conn) SendRaw(ctx context.Context, b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return interruptible(ctx, c.nc.SetWriteDeadline, func() error {
		_, err := c.nc.Write(b)
		return err
	})
}

// BadChecksum returns m encoded as a frame whose checksum is wrong (its
// first byte flipped), for SendRaw.
func BadChecksum(magic wire.Magic, m wire.Message) []byte {
	b := wire.AppendMessage(nil, magic, m)
	b[20] ^= 0xff
	return b
}

// NextFrame reads the next frame the node sends and records it. The
// frame's payload is a private copy. At the end of the stream it returns
// io.EOF (io.ErrUnexpectedEOF in the middle of a frame); a header that can
// never be valid returns the wire error.
func (c *Conn) NextFrame(ctx context.Context) (wire.Frame, error) {
	for {
		f, n, err := wire.ScanFrame(c.buf, c.magic)
		if err != nil {
			return wire.Frame{}, fmt.Errorf("fakepeer: frame from %s: %w", c.RemoteAddr(), err)
		}
		if n > 0 {
			f.Payload = slices.Clone(f.Payload)
			c.buf = c.buf[n:]
			r := Received{Frame: f}
			if !f.Verify() {
				r.Err = &wire.DecodeError{Command: f.CommandName(), Offset: 20, Err: wire.ErrChecksum}
			} else {
				r.Message, r.Err = wire.Decode(f.CommandName(), f.Payload)
			}
			c.mu.Lock()
			c.received = append(c.received, r)
			c.mu.Unlock()
			return f, nil
		}
		if err := c.fill(ctx); err != nil {
			if errors.Is(err, io.EOF) && len(c.buf) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return wire.Frame{}, err
		}
	}
}

// fill reads more bytes into c.buf.
func (c *Conn) fill(ctx context.Context) error {
	if c.tmp == nil {
		c.tmp = make([]byte, 64<<10)
	}
	var n int
	err := interruptible(ctx, c.nc.SetReadDeadline, func() error {
		var err error
		n, err = c.nc.Read(c.tmp)
		return err
	})
	c.buf = append(c.buf, c.tmp[:n]...)
	if n > 0 {
		return nil
	}
	return err
}

// Next reads the next frame and decodes it. A frame with a bad checksum or
// a payload that does not decode is recorded and returned as an error.
func (c *Conn) Next(ctx context.Context) (wire.Message, error) {
	if _, err := c.NextFrame(ctx); err != nil {
		return nil, err
	}
	c.mu.Lock()
	r := c.received[len(c.received)-1]
	c.mu.Unlock()
	if r.Err != nil {
		return nil, fmt.Errorf("fakepeer: %s from %s: %w", r.Command(), c.RemoteAddr(), r.Err)
	}
	return r.Message, nil
}

// Expect reads the next message and checks that its command is cmd.
func (c *Conn) Expect(ctx context.Context, cmd string) (wire.Message, error) {
	m, err := c.Next(ctx)
	if err != nil {
		return nil, fmt.Errorf("fakepeer: waiting for %s: %w", cmd, err)
	}
	if got := m.Command(); got != cmd {
		return nil, fmt.Errorf("fakepeer: got %s from %s, want %s", got, c.RemoteAddr(), cmd)
	}
	return m, nil
}

// WaitFor reads messages until one of command cmd arrives, skipping (but
// recording) the others.
func (c *Conn) WaitFor(ctx context.Context, cmd string) (wire.Message, error) {
	for {
		m, err := c.Next(ctx)
		if err != nil {
			return nil, fmt.Errorf("fakepeer: waiting for %s: %w", cmd, err)
		}
		if m.Command() == cmd {
			return m, nil
		}
	}
}

// ExpectClosed reads (and records) until the node closes the connection. It
// returns nil on a clean close or a reset, ctx.Err() if ctx ends first, and
// any other read error.
func (c *Conn) ExpectClosed(ctx context.Context) error {
	for {
		_, err := c.NextFrame(ctx)
		switch {
		case err == nil:
			continue
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
			return nil
		default:
			return err
		}
	}
}

// Received returns a copy of the record of every frame read so far, in
// order.
func (c *Conn) Received() []Received {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.received)
}

// Commands returns the commands of every frame read so far, in order.
func (c *Conn) Commands() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, len(c.received))
	for i, r := range c.received {
		out[i] = r.Command()
	}
	return out
}

// HandshakeOpts script the fake peer's side of the version handshake.
type HandshakeOpts struct {
	// VersionFirst sends our version at once, before the node's arrives;
	// otherwise we wait for the node's version first, as btcd does.
	VersionFirst bool
	// Protocol is the protocol version we announce (0: wire.ProtocolVersion).
	Protocol int32
	// Nonce is our version nonce (0: a random one).
	Nonce uint64
	// UserAgent is our user agent ("": "/fakepeer:0.1/").
	UserAgent   string
	Services    wire.ServiceFlag
	StartHeight int32
	// WTxIDRelay and SendAddrV2 send those messages between our version
	// and our verack.
	WTxIDRelay, SendAddrV2 bool
	// NoVerack leaves our verack out: the handshake never completes on the
	// node's side. Handshake then returns once the node's verack arrives.
	NoVerack bool
	// Lenient accepts anything from the node between its version and its
	// verack. By default, as btcd does, anything but wtxidrelay and
	// sendaddrv2 there fails the handshake.
	Lenient bool
}

// Version returns the version message the options describe, addressed to
// the node.
func (c *Conn) Version(o HandshakeOpts) *wire.Version {
	v := &wire.Version{
		Protocol:    o.Protocol,
		Services:    o.Services,
		Timestamp:   time.Now().Unix(),
		AddrRecv:    wire.NetAddr{Addr: c.RemoteAddr()},
		AddrFrom:    wire.NetAddr{Services: o.Services, Addr: c.peer.addr},
		Nonce:       o.Nonce,
		UserAgent:   o.UserAgent,
		StartHeight: o.StartHeight,
	}
	if v.Protocol == 0 {
		v.Protocol = wire.ProtocolVersion
	}
	for v.Nonce == 0 {
		v.Nonce = rand.Uint64()
	}
	if v.UserAgent == "" {
		v.UserAgent = "/fakepeer:0.1/"
	}
	return v
}

// Handshake plays the version handshake and returns the node's version.
// The node must send version before anything else, and verack after it
// (with only wtxidrelay and sendaddrv2 in between unless o.Lenient). We
// send our version (first or after the node's, per o.VersionFirst), then
// wtxidrelay and sendaddrv2 if asked, then verack. It returns once the
// node's verack has arrived; what came in between is in Commands.
func (c *Conn) Handshake(ctx context.Context, o HandshakeOpts) (*wire.Version, error) {
	ours := c.Version(o)
	if o.VersionFirst {
		if err := c.Send(ctx, ours); err != nil {
			return nil, err
		}
	}
	m, err := c.Expect(ctx, wire.CmdVersion)
	if err != nil {
		return nil, err
	}
	theirs := m.(*wire.Version)
	if !o.VersionFirst {
		if err := c.Send(ctx, ours); err != nil {
			return nil, err
		}
	}
	var after []wire.Message
	if o.WTxIDRelay {
		after = append(after, &wire.WTxIDRelay{})
	}
	if o.SendAddrV2 {
		after = append(after, &wire.SendAddrV2{})
	}
	if !o.NoVerack {
		after = append(after, &wire.Verack{})
	}
	for _, m := range after {
		if err := c.Send(ctx, m); err != nil {
			return nil, err
		}
	}
	for {
		m, err := c.Next(ctx)
		if err != nil {
			return nil, fmt.Errorf("fakepeer: waiting for verack: %w", err)
		}
		switch m.Command() {
		case wire.CmdVerack:
			return theirs, nil
		case wire.CmdWTxIDRelay, wire.CmdSendAddrV2:
		default:
			if !o.Lenient {
				return nil, fmt.Errorf("fakepeer: %s sent %s before its verack", c.RemoteAddr(), m.Command())
			}
		}
	}
}

// aLongTimeAgo is a deadline in the past: it makes a blocked Read or Write
// return at once.
var aLongTimeAgo = time.Unix(1, 0)

// interruptible runs op, a Read or Write on a connection whose deadline
// setDeadline sets, so that it returns ctx.Err() when ctx ends first.
func interruptible(ctx context.Context, setDeadline func(time.Time) error, op func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(fired)
		setDeadline(aLongTimeAgo)
	})
	err := op()
	if !stop() {
		<-fired // the deadline was set: clear it for the next call
		setDeadline(time.Time{})
		if err != nil {
			return ctx.Err()
		}
	}
	return err
}
