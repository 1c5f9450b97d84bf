package coretest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"syscall"

	"github.com/btcsuite/btcd/wire/v2"

	"github.com/btcpipe/btcpipe/internal/wireclient"
)

const (
	// ProtocolVersion is the protocol version Conn announces.
	ProtocolVersion = wireclient.ProtocolVersion

	// UserAgent is the user agent Conn announces.
	UserAgent = "/coretest:0.1/"
)

// Conn is a v1-transport connection to bitcoind whose version/verack
// handshake is complete, made with btcd's wire package (internal/wireclient)
// so that it is an oracle independent of btcpipe's codec.
type Conn = wireclient.Conn

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
	c, err := wireclient.Dial(ctx, addr, wireclient.Options{Net: wire.TestNet, UserAgent: UserAgent, AddrV2: addrv2})
	if err != nil {
		return nil, fmt.Errorf("coretest: handshake with %s: %w", addr, err)
	}
	return c, nil
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
	out, err := c.GetAddr(ctx)
	if err != nil {
		return nil, fmt.Errorf("coretest: getaddr to %s: %w", addr, err)
	}
	return out, nil
}

func isUnknown(err error) bool { return errors.Is(err, wire.ErrUnknownMessage) }
