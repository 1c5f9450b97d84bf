package btcdtest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/btcsuite/btcd/wire/v2"

	"github.com/btcpipe/btcpipe/internal/wireclient"
)

const (
	// ProtocolVersion is the protocol version Conn announces.
	ProtocolVersion = wireclient.ProtocolVersion

	// UserAgent is the user agent Conn announces.
	UserAgent = "/btcdtest:0.1/"
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
// complete, made with btcd's own wire package (internal/wireclient), so it
// serves as an independent oracle for btcpipe's codec. Close it with Close,
// which shuts it down gracefully: btcd refuses more than 8 unfinished
// handshakes from one /24 at once.
type Conn = wireclient.Conn

// Dial connects to the btcd at addr (which must be a loopback address) and
// completes the handshake as btcd requires (see wireclient.Dial: no
// sendaddrv2, so btcd answers getaddr with addr). ctx bounds the whole
// handshake.
func Dial(ctx context.Context, addr netip.AddrPort, network string) (*Conn, error) {
	if !addr.Addr().Unmap().IsLoopback() {
		return nil, fmt.Errorf("btcdtest: refusing to dial %s: only loopback addresses are allowed", addr)
	}
	bn, err := magic(network)
	if err != nil {
		return nil, err
	}
	c, err := wireclient.Dial(ctx, addr, wireclient.Options{Net: bn, UserAgent: UserAgent})
	if err != nil {
		return nil, fmt.Errorf("btcdtest: handshake with %s: %w", addr, err)
	}
	return c, nil
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
	err = c.WithContext(ctx, func() error {
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
	out, err := c.GetAddr(ctx)
	if err != nil {
		return nil, fmt.Errorf("btcdtest: getaddr to %s: %w", addr, err)
	}
	return out, nil
}
