package btcdtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"

	"github.com/btcsuite/btcd/wire/v2"
)

const (
	// ProtocolVersion is the protocol version Conn announces.
	ProtocolVersion = 70016

	// UserAgent is the user agent Conn announces.
	UserAgent = "/btcdtest:0.1/"

	// closeDrainTimeout bounds how long Close waits for btcd to close its
	// side after ours.
	closeDrainTimeout = 2 * time.Second
)

// Network names accepted by Options.Network, Dial, SeedAddrs and GetAddr.
const (
	Regtest = "regtest"
	Simnet  = "simnet"
)

// ErrSimnetIgnoresAddr is returned by SeedAddrs for simnet: btcd drops addr and
// addrv2 messages there (server.go OnAddr) and never answers getaddr.
var ErrSimnetIgnoresAddr = errors.New("btcdtest: btcd ignores addr and getaddr on simnet")

// magic returns the wire network of a network name.
func magic(network string) (wire.BitcoinNet, error) {
	switch network {
	case Regtest:
		return wire.TestNet, nil
	case Simnet:
		return wire.SimNet, nil
	}
	return 0, fmt.Errorf("btcdtest: unknown network %q (want %q or %q)", network, Regtest, Simnet)
}

// Conn is a v1-transport connection to btcd whose version/verack handshake is
// complete. It encodes and decodes with btcd's own wire package, so it serves
// as an independent oracle for btcpipe's codec. It is not safe for concurrent
// use.
type Conn struct {
	// Remote is the version message btcd sent.
	Remote *wire.MsgVersion

	nc  net.Conn
	r   *bufio.Reader
	net wire.BitcoinNet
}

// Dial connects to the btcd at addr (which must be a loopback address) and
// completes the handshake as btcd requires: it sends version (protocol 70016,
// services 0, start height 0, relay false), waits for btcd's version, sends
// verack and waits for btcd's verack, ignoring sendaddrv2 and anything else
// btcd sends meanwhile. It sends nothing else before its verack. ctx bounds
// the whole handshake.
//
// Close the Conn with Close, which shuts it down gracefully: btcd refuses more
// than 8 unfinished handshakes from one /24 at once.
func Dial(ctx context.Context, addr netip.AddrPort, network string) (*Conn, error) {
	if !addr.Addr().Unmap().IsLoopback() {
		return nil, fmt.Errorf("btcdtest: refusing to dial %s: only loopback addresses are allowed", addr)
	}
	bn, err := magic(network)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return nil, err
	}
	c := &Conn{nc: nc, r: bufio.NewReader(nc), net: bn}
	if err := c.withContext(ctx, func() error { return c.handshake(addr) }); err != nil {
		nc.Close()
		return nil, fmt.Errorf("btcdtest: handshake with %s: %w", addr, err)
	}
	return c, nil
}

func (c *Conn) handshake(addr netip.AddrPort) error {
	you := wire.NewNetAddressIPPort(addr.Addr().AsSlice(), addr.Port(), 0)
	me := wire.NewNetAddressIPPort(net.IPv4zero, 0, 0)
	v := wire.NewMsgVersion(me, you, rand.Uint64(), 0)
	v.ProtocolVersion = ProtocolVersion
	v.Services = 0
	v.UserAgent = UserAgent
	v.DisableRelayTx = true
	if err := c.Write(v); err != nil {
		return fmt.Errorf("send version: %w", err)
	}
	for c.Remote == nil {
		msg, err := c.Read()
		if err != nil {
			return fmt.Errorf("await version: %w", err)
		}
		if rv, ok := msg.(*wire.MsgVersion); ok {
			c.Remote = rv
		}
	}
	if err := c.Write(wire.NewMsgVerAck()); err != nil {
		return fmt.Errorf("send verack: %w", err)
	}
	for {
		msg, err := c.Read()
		if err != nil {
			return fmt.Errorf("await verack: %w", err)
		}
		if _, ok := msg.(*wire.MsgVerAck); ok {
			return nil
		}
	}
}

// withContext runs f with the connection's deadline set from ctx, and makes
// f's blocking I/O return at once when ctx is cancelled.
func (c *Conn) withContext(ctx context.Context, f func() error) error {
	if d, ok := ctx.Deadline(); ok {
		c.nc.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(time.Unix(1, 0)) })
	err := f()
	stop()
	c.nc.SetDeadline(time.Time{})
	if ctxErr := ctx.Err(); err != nil && ctxErr != nil {
		return fmt.Errorf("%w (%v)", ctxErr, err)
	}
	return err
}

// Write sends one message.
func (c *Conn) Write(msg wire.Message) error {
	return wire.WriteMessage(c.nc, msg, ProtocolVersion, c.net)
}

// Read returns the next message, skipping messages whose command btcd's wire
// package does not know.
func (c *Conn) Read() (wire.Message, error) {
	for {
		msg, _, err := wire.ReadMessage(c.r, ProtocolVersion, c.net)
		if errors.Is(err, wire.ErrUnknownMessage) {
			continue
		}
		return msg, err
	}
}

// Sync sends a ping and reads until the matching pong, returning the messages
// that came before it. btcd handles a peer's messages one at a time, in
// order, on one goroutine, and queues its replies in order, so once the pong
// is here btcd has fully processed everything sent before the ping (addr
// messages included: OnAddr adds them to the address manager synchronously),
// and every reply to them precedes the pong.
func (c *Conn) Sync(ctx context.Context) ([]wire.Message, error) {
	var got []wire.Message
	err := c.withContext(ctx, func() error {
		nonce := rand.Uint64()
		if err := c.Write(wire.NewMsgPing(nonce)); err != nil {
			return fmt.Errorf("send ping: %w", err)
		}
		for {
			msg, err := c.Read()
			if err != nil {
				return fmt.Errorf("await pong: %w", err)
			}
			if p, ok := msg.(*wire.MsgPong); ok && p.Nonce == nonce {
				return nil
			}
			got = append(got, msg)
		}
	})
	return got, err
}

// Close shuts the connection down gracefully: it half-closes its side, lets
// btcd notice the end of the stream and close its own side (discarding what
// btcd still sends, for at most 2 s), then closes. Closing with unread data
// would send a TCP reset, which can make btcd drop messages it has not read
// yet.
func (c *Conn) Close() error {
	if tc, ok := c.nc.(*net.TCPConn); ok {
		if err := tc.CloseWrite(); err == nil {
			c.nc.SetReadDeadline(time.Now().Add(closeDrainTimeout))
			io.Copy(io.Discard, c.r)
		}
	}
	return c.nc.Close()
}

// SeedAddrs teaches the btcd at addr the given addresses from one fresh
// inbound connection: it completes the handshake (Dial), sends addr messages
// of at most 1,000 entries each (timestamp now, services
// NODE_NETWORK|NODE_WITNESS), then waits for a ping/pong round trip, which
// proves btcd's address manager has processed every entry (see Sync), and
// closes gracefully. btcd stores only the addresses it deems routable; use
// RoutableAddrs to get addresses it stores all of.
//
// The addresses are data only, never dialled, as long as btcd runs with
// --connect (Start always passes it). SeedAddrs returns ErrSimnetIgnoresAddr
// on simnet and does nothing when addrs is empty (btcd disconnects a peer
// that sends an empty addr).
func SeedAddrs(ctx context.Context, addr netip.AddrPort, network string, addrs []netip.AddrPort) error {
	if network == Simnet {
		return ErrSimnetIgnoresAddr
	}
	if _, err := magic(network); err != nil {
		return err
	}
	if len(addrs) == 0 {
		return nil
	}
	c, err := Dial(ctx, addr, network)
	if err != nil {
		return err
	}
	defer c.Close()

	now := time.Now()
	services := wire.SFNodeNetwork | wire.SFNodeWitness
	err = c.withContext(ctx, func() error {
		for start := 0; start < len(addrs); start += wire.MaxAddrPerMsg {
			chunk := addrs[start:min(start+wire.MaxAddrPerMsg, len(addrs))]
			msg := wire.NewMsgAddr()
			for _, a := range chunk {
				na := wire.NewNetAddressTimestamp(now, services, a.Addr().Unmap().AsSlice(), a.Port())
				if err := msg.AddAddress(na); err != nil {
					return err
				}
			}
			if err := c.Write(msg); err != nil {
				return fmt.Errorf("send addr: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("btcdtest: seeding %s: %w", addr, err)
	}
	if _, err := c.Sync(ctx); err != nil {
		return fmt.Errorf("btcdtest: seeding %s: %w", addr, err)
	}
	return nil
}

// GetAddr asks the btcd at addr for addresses from one fresh inbound
// connection: handshake (Dial, without sendaddrv2, so the answer is addr),
// getaddr, then a ping/pong round trip; it returns every address from the addr
// messages that came before the pong, and closes gracefully.
//
// btcd v0.26.2 answers with a uniformly random floor(known × 23 / 100) of the
// addresses it knows, capped at 2,500 and then truncated to one message of at
// most 1,000 (peer.PushAddrMsg truncates rather than splitting); it sends
// nothing when that is zero, and nothing at all on simnet.
func GetAddr(ctx context.Context, addr netip.AddrPort, network string) ([]netip.AddrPort, error) {
	c, err := Dial(ctx, addr, network)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.Write(wire.NewMsgGetAddr()); err != nil {
		return nil, fmt.Errorf("btcdtest: getaddr to %s: %w", addr, err)
	}
	msgs, err := c.Sync(ctx)
	if err != nil {
		return nil, fmt.Errorf("btcdtest: getaddr to %s: %w", addr, err)
	}
	var out []netip.AddrPort
	for _, m := range msgs {
		am, ok := m.(*wire.MsgAddr)
		if !ok {
			continue
		}
		for _, na := range am.AddrList {
			ip, ok := netip.AddrFromSlice(na.IP)
			if !ok {
				return nil, fmt.Errorf("btcdtest: getaddr to %s: bad address %v", addr, na.IP)
			}
			out = append(out, netip.AddrPortFrom(ip.Unmap(), na.Port))
		}
	}
	return out, nil
}
