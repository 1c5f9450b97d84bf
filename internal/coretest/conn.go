package coretest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"path/filepath"
	"syscall"
	"time"

	"github.com/btcsuite/btcd/wire/v2"
)

const (
	// ProtocolVersion is the protocol version Conn announces.
	ProtocolVersion = 70016

	// UserAgent is the user agent Conn announces.
	UserAgent = "/coretest:0.1/"

	closeDrainTimeout = 2 * time.Second
)

// Conn is a v1-transport connection to bitcoind whose version/verack
// handshake is complete, made with btcd's wire package so that it is an
// oracle independent of btcpipe's codec. It is not safe for concurrent use.
type Conn struct {
	// Remote is the version message bitcoind sent.
	Remote *wire.MsgVersion

	nc net.Conn
	r  *bufio.Reader
}

// ErrNotLocal is returned by Dial for an address that is neither loopback nor
// dialled from inside a separate network namespace.
var ErrNotLocal = errors.New("coretest: refusing to dial a non-loopback address from the host's network namespace")

// InForeignNetns reports whether this process runs in a named network
// namespace, one made with `ip netns add` (its /proc/self/ns/net is the same
// file as one under /run/netns), as under `ip netns exec`. The host's own
// namespace has no such name. It answers false when it cannot tell.
func InForeignNetns() bool {
	var self syscall.Stat_t
	if err := syscall.Stat("/proc/self/ns/net", &self); err != nil {
		return false
	}
	names, _ := filepath.Glob("/run/netns/*")
	for _, p := range names {
		var st syscall.Stat_t
		if syscall.Stat(p, &st) == nil && st.Dev == self.Dev && st.Ino == self.Ino {
			return true
		}
	}
	return false
}

// Dial connects to the regtest bitcoind at addr and completes the handshake:
// version (protocol 70016, no services, relay false), then sendaddrv2 when
// addrv2 is true, verack, and waits for bitcoind's verack, skipping
// everything else. ctx bounds the handshake. addr must be loopback unless
// the process runs inside a network namespace of its own (InForeignNetns).
func Dial(ctx context.Context, addr netip.AddrPort, addrv2 bool) (*Conn, error) {
	if !addr.Addr().Unmap().IsLoopback() && !InForeignNetns() {
		return nil, fmt.Errorf("%w: %s", ErrNotLocal, addr)
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return nil, err
	}
	c := &Conn{nc: nc, r: bufio.NewReader(nc)}
	if err := c.withContext(ctx, func() error { return c.handshake(addr, addrv2) }); err != nil {
		nc.Close()
		return nil, fmt.Errorf("coretest: handshake with %s: %w", addr, err)
	}
	return c, nil
}

func (c *Conn) handshake(addr netip.AddrPort, addrv2 bool) error {
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
	if addrv2 {
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
	return wire.WriteMessage(c.nc, msg, ProtocolVersion, wire.TestNet)
}

// Read returns the next message, skipping the ones btcd's wire package does
// not know (sendcmpct, for one).
func (c *Conn) Read() (wire.Message, error) {
	for {
		msg, _, err := wire.ReadMessage(c.r, ProtocolVersion, wire.TestNet)
		if errors.Is(err, wire.ErrUnknownMessage) {
			continue
		}
		return msg, err
	}
}

// Sync sends a ping and reads until the pong with its nonce, returning what
// came before it and answering bitcoind's own pings meanwhile. bitcoind
// processes a peer's messages in order and sends what a message produces
// (an addr answer, say) before it processes the next, so once the pong is
// here every answer to what was sent before the ping has arrived.
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

// Close half-closes, drains what bitcoind still sends for at most 2 s, and
// closes, so that bitcoind sees a clean end of stream rather than a reset.
func (c *Conn) Close() error {
	if tc, ok := c.nc.(*net.TCPConn); ok {
		if err := tc.CloseWrite(); err == nil {
			c.nc.SetReadDeadline(time.Now().Add(closeDrainTimeout))
			io.Copy(io.Discard, c.r)
		}
	}
	return c.nc.Close()
}

// GetAddr asks the bitcoind at addr for addresses from one fresh connection
// (Dial with addrv2 as given, getaddr, Sync) and returns every address of the
// addr or addrv2 messages that came before the pong, in order, with
// duplicates.
func GetAddr(ctx context.Context, addr netip.AddrPort, addrv2 bool) ([]netip.AddrPort, error) {
	c, err := Dial(ctx, addr, addrv2)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.Write(wire.NewMsgGetAddr()); err != nil {
		return nil, fmt.Errorf("coretest: getaddr to %s: %w", addr, err)
	}
	msgs, err := c.Sync(ctx)
	if err != nil {
		return nil, fmt.Errorf("coretest: getaddr to %s: %w", addr, err)
	}
	var out []netip.AddrPort
	add := func(ip net.IP, port uint16) error {
		a, ok := netip.AddrFromSlice(ip)
		if !ok {
			return fmt.Errorf("coretest: getaddr to %s: bad address %v", addr, ip)
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
				legacy := na.ToLegacy()
				if legacy == nil || legacy.IP == nil {
					continue // Tor, I2P, CJDNS: none is taught here
				}
				if err := add(legacy.IP, na.Port); err != nil {
					return nil, err
				}
			}
		}
	}
	return out, nil
}

func isUnknown(err error) bool { return errors.Is(err, wire.ErrUnknownMessage) }
