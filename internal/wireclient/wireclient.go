// Package wireclient is a minimal v1 Bitcoin peer made with btcd's wire
// package: an oracle independent of btcpipe's codec, for the end-to-end
// tests against btcd (internal/btcdtest) and Bitcoin Core
// (internal/coretest), which check what address they may dial before they
// call Dial.
package wireclient

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
	// ProtocolVersion is the protocol version a Conn announces.
	ProtocolVersion = 70016

	// closeDrainTimeout bounds how long Close waits for the peer to close
	// its side after ours.
	closeDrainTimeout = 2 * time.Second
)

// Options say how a Conn introduces itself.
type Options struct {
	Net       wire.BitcoinNet // the network magic
	UserAgent string
	// AddrV2 sends sendaddrv2 between our version and verack (BIP155), so
	// that the peer answers getaddr with addrv2.
	AddrV2 bool
}

// Conn is a v1-transport connection whose version/verack handshake is
// complete. It is not safe for concurrent use.
type Conn struct {
	// Remote is the version message the peer sent.
	Remote *wire.MsgVersion

	nc  net.Conn
	r   *bufio.Reader
	net wire.BitcoinNet
}

// Dial connects to addr and completes the handshake as btcd and Bitcoin
// Core require: version (protocol 70016, services 0, start height 0, relay
// false), sendaddrv2 if asked, and verack once the peer's version came;
// then it waits for the peer's verack, skipping everything else. It sends
// nothing else before its verack. ctx bounds the whole handshake. Dial does
// not check addr: its callers do.
func Dial(ctx context.Context, addr netip.AddrPort, o Options) (*Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return nil, err
	}
	c := &Conn{nc: nc, r: bufio.NewReader(nc), net: o.Net}
	if err := c.WithContext(ctx, func() error { return c.handshake(addr, o) }); err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

func (c *Conn) handshake(addr netip.AddrPort, o Options) error {
	you := wire.NewNetAddressIPPort(addr.Addr().AsSlice(), addr.Port(), 0)
	me := wire.NewNetAddressIPPort(net.IPv4zero, 0, 0)
	v := wire.NewMsgVersion(me, you, rand.Uint64(), 0)
	v.ProtocolVersion = ProtocolVersion
	v.Services = 0
	v.UserAgent = o.UserAgent
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
	if o.AddrV2 {
		if err := c.Write(wire.NewMsgSendAddrV2()); err != nil {
			return fmt.Errorf("send sendaddrv2: %w", err)
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

// WithContext runs f with the connection's deadline set from ctx, and makes
// f's blocking I/O return at once when ctx is cancelled.
func (c *Conn) WithContext(ctx context.Context, f func() error) error {
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

// Read returns the next message, skipping those whose command btcd's wire
// package does not know (sendcmpct, for one).
func (c *Conn) Read() (wire.Message, error) {
	for {
		msg, _, err := wire.ReadMessage(c.r, ProtocolVersion, c.net)
		if errors.Is(err, wire.ErrUnknownMessage) {
			continue
		}
		return msg, err
	}
}

// Sync sends a ping and reads until the pong with its nonce, returning the
// messages that came before it and answering the peer's own pings
// meanwhile. btcd and Bitcoin Core handle a peer's messages in order and
// send what a message produces (an addr answer, say) before they handle the
// next, so once the pong is here every answer to what was sent before the
// ping has arrived (and btcd's address manager has taken every addr sent).
func (c *Conn) Sync(ctx context.Context) ([]wire.Message, error) {
	var got []wire.Message
	err := c.WithContext(ctx, func() error {
		nonce := rand.Uint64()
		if err := c.Write(wire.NewMsgPing(nonce)); err != nil {
			return fmt.Errorf("send ping: %w", err)
		}
		for {
			msg, err := c.Read()
			if err != nil {
				return fmt.Errorf("await pong: %w", err)
			}
			switch m := msg.(type) {
			case *wire.MsgPong:
				if m.Nonce == nonce {
					return nil
				}
			case *wire.MsgPing:
				if err := c.Write(wire.NewMsgPong(m.Nonce)); err != nil {
					return fmt.Errorf("send pong: %w", err)
				}
				continue
			}
			got = append(got, msg)
		}
	})
	return got, err
}

// GetAddr sends getaddr and Syncs, and returns every IP address of the addr
// and addrv2 messages that came before the pong, in order, with duplicates
// (Tor, I2P and CJDNS entries are left out).
func (c *Conn) GetAddr(ctx context.Context) ([]netip.AddrPort, error) {
	if err := c.Write(wire.NewMsgGetAddr()); err != nil {
		return nil, err
	}
	msgs, err := c.Sync(ctx)
	if err != nil {
		return nil, err
	}
	var out []netip.AddrPort
	add := func(ip net.IP, port uint16) error {
		a, ok := netip.AddrFromSlice(ip)
		if !ok {
			return fmt.Errorf("bad address %v", ip)
		}
		out = append(out, netip.AddrPortFrom(a.Unmap(), port))
		return nil
	}
	for _, m := range msgs {
		switch m := m.(type) {
		case *wire.MsgAddr:
			for _, na := range m.AddrList {
				if err := add(na.IP, na.Port); err != nil {
					return nil, err
				}
			}
		case *wire.MsgAddrV2:
			for _, na := range m.AddrList {
				if legacy := na.ToLegacy(); legacy != nil && legacy.IP != nil {
					if err := add(legacy.IP, na.Port); err != nil {
						return nil, err
					}
				}
			}
		}
	}
	return out, nil
}

// Close shuts the connection down gracefully: it half-closes our side, lets
// the peer notice the end of the stream and close its own (discarding what
// it still sends, for at most 2 s), then closes. Closing with unread data
// would send a TCP reset, which makes btcd drop messages it has not read
// yet and Bitcoin Core log a socket error.
func (c *Conn) Close() error {
	if tc, ok := c.nc.(*net.TCPConn); ok {
		if err := tc.CloseWrite(); err == nil {
			c.nc.SetReadDeadline(time.Now().Add(closeDrainTimeout))
			io.Copy(io.Discard, c.r)
		}
	}
	return c.nc.Close()
}
