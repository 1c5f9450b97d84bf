package crawler

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/btcpipe/btcpipe/internal/hostport"
	"github.com/btcpipe/btcpipe/wire"
)

// target is an address waiting to be dialled.
type target struct {
	addr   wire.NetAddrV2
	source string
	// noV2: the addr entry carried services without NODE_P2P_V2, so an
	// auto transport dials v1 at once (seeds and entries without services:
	// v2 is tried).
	noV2 bool
}

// addrKey identifies an address for deduplication.
type addrKey struct {
	network wire.NetID
	ip      netip.Addr
	key     [32]byte
	port    uint16
}

// seed learns the seed addresses.
func (c *Crawler) seed(ctx context.Context) error {
	seeds, port := c.cfg.Seeds, c.network.DefaultPort
	if len(seeds) == 0 {
		seeds = c.network.DNSSeeds
		if len(seeds) == 0 { // regtest, simnet
			seeds = []string{"127.0.0.1"}
		}
	}
	resolve := c.cfg.Resolve
	if resolve == nil {
		resolve = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	var errs []error
	for _, s := range seeds {
		host, p, err := hostport.Split(s, port)
		if err != nil {
			return fmt.Errorf("crawler: seed: %w", err)
		}
		if ip, err := netip.ParseAddr(host); err == nil {
			c.learn([]wire.NetAddrV2{wire.NetAddrV2FromAddrPort(netip.AddrPortFrom(ip, p), 0, 0)}, "seed")
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, c.cfg.ConnectTimeout+c.cfg.HandshakeTimeout)
		ips, err := resolve(rctx, host)
		cancel()
		if err != nil {
			c.log.WithError(err).WithField("seed", host).Warn("cannot resolve seed")
			errs = append(errs, fmt.Errorf("%s: %w", host, err))
			continue
		}
		list := make([]wire.NetAddrV2, len(ips))
		for i, ip := range ips {
			list[i] = wire.NetAddrV2FromAddrPort(netip.AddrPortFrom(ip, p), 0, 0)
		}
		c.learn(list, "dns:"+host)
	}
	if ctx.Err() != nil {
		return nil // interrupted: an empty, interrupted summary
	}
	c.mu.Lock()
	n := len(c.seen)
	c.mu.Unlock()
	if n == 0 {
		return fmt.Errorf("crawler: no seed address (%w)", errors.Join(errs...))
	}
	return nil
}

// learn adds the new addresses of list to the book: those that may be
// dialled to the queue, the others straight to the output as NotDialled.
// It returns how many were new.
func (c *Crawler) learn(list []wire.NetAddrV2, source string) int {
	var skipped []Record
	fresh := 0
	c.mu.Lock()
	for _, a := range list {
		noV2 := a.Services != 0 && a.Services&wire.NodeP2PV2 == 0
		a = normalise(a)
		k := addrKey{network: a.Network, ip: a.IP, key: a.Key, port: a.Port}
		if _, ok := c.seen[k]; ok {
			continue
		}
		if len(c.seen) >= c.cfg.MaxNodes {
			c.dropped++
			continue
		}
		c.seen[k] = struct{}{}
		fresh++
		if reason := c.undialable(a); reason != "" {
			skipped = append(skipped, Record{
				Type: RecordType, Addr: a.String(), Network: a.Network.String(), Source: source,
				Outcome: NotDialled, Reason: reason,
			})
			continue
		}
		c.queue = append(c.queue, target{addr: a, source: source, noV2: noV2})
	}
	c.mu.Unlock()
	if fresh > len(skipped) {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	for i := range skipped {
		c.finish(&skipped[i])
	}
	return fresh
}

// normalise turns an IPv4-mapped IPv6 entry into an IPv4 one and clears
// what does not identify the address.
func normalise(a wire.NetAddrV2) wire.NetAddrV2 {
	a.Time, a.Services = 0, 0
	switch a.Network {
	case wire.NetIPv4, wire.NetIPv6:
		a.IP = a.IP.Unmap().WithZone("")
		if a.IP.Is4() {
			a.Network = wire.NetIPv4
		}
		a.Key = [32]byte{}
	case wire.NetCJDNS:
		a.Key = [32]byte{}
	default:
		a.IP = netip.Addr{}
	}
	return a
}

// undialable returns why a must not be dialled, or "".
func (c *Crawler) undialable(a wire.NetAddrV2) string {
	switch a.Network {
	case wire.NetTorV3:
		return "tor v3: not dialled (no proxy)"
	case wire.NetI2P:
		return "i2p: not dialled"
	case wire.NetCJDNS:
		return "cjdns: not dialled"
	}
	ap, _ := a.AddrPort()
	if ok, reason := c.allow.Check(ap); !ok {
		return reason
	}
	return ""
}

// next takes the next target off the queue, waiting while the queue is
// empty but connections are under way (they may yet add to it). ok is false
// when nothing is left and nothing is under way, or ctx ended.
func (c *Crawler) next(ctx context.Context) (target, bool) {
	for {
		c.mu.Lock()
		if ctx.Err() != nil {
			c.mu.Unlock()
			return target{}, false
		}
		if c.head < len(c.queue) {
			t := c.queue[c.head]
			c.queue[c.head] = target{}
			c.head++
			if c.head >= 1024 && c.head*2 >= len(c.queue) {
				n := copy(c.queue, c.queue[c.head:])
				clear(c.queue[n:])
				c.queue, c.head = c.queue[:n], 0
			}
			c.inflight++
			c.mu.Unlock()
			return t, true
		}
		if c.inflight == 0 {
			c.mu.Unlock()
			return target{}, false
		}
		c.mu.Unlock()
		select {
		case <-c.wake:
		case <-ctx.Done():
		}
	}
}

// release marks a target taken by next as finished.
func (c *Crawler) release() {
	c.mu.Lock()
	c.inflight--
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}
