package crawler

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/btcpipe/btcpipe/internal/hostport"
	"github.com/btcpipe/btcpipe/wire"
)

// target is an address waiting to be dialled.
type target struct {
	addr   wire.NetAddrV2
	key    addrKey
	source string
	// noV2: the addr entry carried services without NODE_P2P_V2, so an
	// auto transport dials v1 at once (seeds and entries without services:
	// v2 is tried).
	noV2 bool
}

// entry is what the book knows of one address.
type entry struct {
	last     uint32 // newest announced timestamp (Unix s); 0: none (a seed)
	services wire.ServiceFlag
	sources  uint32 // peers that announced it
	lastSrc  uint64 // the visit that last announced it (counts a source once)
	state    uint8
}

// States of an entry.
const (
	stateQueued   uint8 = iota // queued, being dialled or recorded
	stateStale                 // too old so far: recorded at the end unless announced afresh
	stateRecorded              // recorded not_dialled
)

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
			c.learn([]wire.NetAddrV2{wire.NetAddrV2FromAddrPort(netip.AddrPortFrom(ip, p), 0, 0)}, "seed", 0)
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
		c.learn(list, "dns:"+host, 0)
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

// learn adds the addresses of list to the book: new ones that may be
// dialled to the queue, those that must not be straight to the output as
// NotDialled, and those announced too long ago to the stale set (recorded
// at the end unless announced afresh meanwhile). For every address it
// keeps the newest timestamp, its services and how many sources announced
// it; srcID identifies the announcing visit (0: a seed). It returns how
// many addresses were new.
func (c *Crawler) learn(list []wire.NetAddrV2, source string, srcID uint64) int {
	var skipped []Record
	fresh, queued := 0, 0
	cutoff := uint32(0)
	if c.cfg.MaxAge > 0 {
		if t := time.Now().Add(-c.cfg.MaxAge).Unix(); t > 0 {
			cutoff = uint32(t)
		}
	}
	c.mu.Lock()
	for _, raw := range list {
		a := normalise(raw)
		// Services without NODE_P2P_V2: an auto transport dials v1 at once.
		noV2 := raw.Services != 0 && raw.Services&wire.NodeP2PV2 == 0
		k := keyOf(a)
		e, ok := c.seen[k]
		if ok {
			if srcID != 0 && e.lastSrc != srcID {
				e.sources++
				e.lastSrc = srcID
			}
			if raw.Time > e.last {
				e.last, e.services = raw.Time, raw.Services
			}
			if e.state == stateStale && (e.last == 0 || e.last >= cutoff) {
				e.state = stateQueued
				c.stale--
				stale := e.services != 0 && e.services&wire.NodeP2PV2 == 0
				c.queue = append(c.queue, target{addr: a, key: k, source: source, noV2: stale})
				queued++
			}
			continue
		}
		if len(c.seen) >= c.cfg.MaxNodes {
			c.dropped++
			continue
		}
		e = &entry{last: raw.Time, services: raw.Services}
		if srcID != 0 {
			e.sources, e.lastSrc = 1, srcID
		}
		c.seen[k] = e
		fresh++
		if reason := c.undialable(a); reason != "" {
			e.state = stateRecorded
			r := Record{
				Type: RecordType, Addr: a.String(), Network: a.Network.String(), Source: source,
				Outcome: NotDialled, Reason: reason,
			}
			announced(&r, e)
			skipped = append(skipped, r)
			continue
		}
		if raw.Time != 0 && raw.Time < cutoff {
			e.state = stateStale
			c.stale++
			c.staleSource[k] = source
			continue
		}
		c.queue = append(c.queue, target{addr: a, key: k, source: source, noV2: noV2})
		queued++
	}
	c.mu.Unlock()
	if queued > 0 {
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

// announced copies what the announcements said of an address into r.
// c.mu must be held (or e otherwise not shared).
func announced(r *Record, e *entry) {
	if e.last != 0 {
		t := time.Unix(int64(e.last), 0).UTC()
		r.LastAnnounced = &t
		r.AnnouncedServices = uint64(e.services)
	}
	r.Sources = int(e.sources)
}

// fillAnnounced completes r from the book's entry for k.
func (c *Crawler) fillAnnounced(r *Record, k addrKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.seen[k]; ok {
		announced(r, e)
	}
}

// recordStale records every address still stale at the end of the crawl.
func (c *Crawler) recordStale() {
	var recs []Record
	now := time.Now()
	c.mu.Lock()
	for k, e := range c.seen {
		if e.state != stateStale {
			continue
		}
		e.state = stateRecorded
		a := wire.NetAddrV2{Network: k.network, Port: k.port}.WithIP(k.ip).WithKey(k.key)
		age := now.Sub(time.Unix(int64(e.last), 0)).Round(time.Hour)
		r := Record{
			Type: RecordType, Addr: a.String(), Network: a.Network.String(), Source: c.staleSource[k],
			Outcome: NotDialled,
			Reason:  fmt.Sprintf("%s: last announced %s ago, more than the maximum age %s", StaleReasonPrefix, age, c.cfg.MaxAge),
		}
		announced(&r, e)
		recs = append(recs, r)
	}
	c.stale = 0
	clear(c.staleSource)
	c.mu.Unlock()
	for i := range recs {
		c.finish(&recs[i])
	}
}

// keyOf is the book's key of a normalised address.
func keyOf(a wire.NetAddrV2) addrKey {
	return addrKey{network: a.Network, ip: a.IP(), key: a.Key(), port: a.Port}
}

// normalise turns an IPv4-mapped IPv6 entry into an IPv4 one and clears what does not identify the
// address (its timestamp and services too: the book keeps those).
func normalise(a wire.NetAddrV2) wire.NetAddrV2 {
	a.Time, a.Services = 0, 0
	if a.Network == wire.NetIPv6 {
		if ip := a.IP().Unmap(); ip.Is4() {
			a.Network = wire.NetIPv4
			a = a.WithIP(ip)
		}
	}
	return a
}

// undialable returns why a must not be dialled, or "". The allowlist
// governs IP addresses; the netreach routes (a proxy for Tor, the SAM
// bridge for I2P, a route for CJDNS, onlynet) govern every network.
func (c *Crawler) undialable(a wire.NetAddrV2) string {
	if a.Network == wire.NetIPv4 || a.Network == wire.NetIPv6 {
		ap, _ := a.AddrPort()
		if ok, reason := c.allow.Check(ap); !ok {
			return reason
		}
	}
	if _, err := c.reach.Route(a); err != nil {
		return err.Error()
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
