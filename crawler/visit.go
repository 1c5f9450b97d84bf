package crawler

import (
	"context"
	"errors"
	"fmt"

	"github.com/btcpipe/btcpipe/netreach"
	"github.com/btcpipe/btcpipe/peer"
)

// proxyOutcome is the outcome of a failed dial through a proxy or bridge.
func proxyOutcome(f netreach.Failure) Outcome {
	switch f {
	case netreach.FailureRefused:
		return Refused
	case netreach.FailureTimeout:
		return Timeout
	case netreach.FailureUnreachable:
		return Unreachable
	case netreach.FailureNotDialled:
		return NotDialled
	}
	return ProxyFailed
}

// Causes with which the crawler ends a session on its own terms.
var (
	errAnswer         = errors.New("getaddr answer complete")
	errNoAnswer       = errors.New("pong without a getaddr answer")
	errQuiet          = errors.New("quiet period after addresses")
	errGetAddrTimeout = errors.New("getaddr timeout")
	errAddrCap        = errors.New("per-node address cap reached")
)

// endedBy names a cause with which the crawler ends a session, or "".
func endedBy(cause error) string {
	switch cause {
	case errAnswer:
		return EndedAnswer
	case errNoAnswer:
		return EndedNoAnswer
	case errQuiet:
		return EndedQuiet
	case errGetAddrTimeout:
		return EndedGetAddrTimeout
	case errAddrCap:
		return EndedAddrCap
	}
	return ""
}

// visit dials t, runs a session and records the outcome.
func (c *Crawler) visit(ctx context.Context, t target) {
	if err := c.limit.wait(ctx); err != nil {
		c.unstarted.Add(1)
		return
	}
	rec := &Record{Type: RecordType, Addr: t.addr.String(), Network: t.addr.Network.String(), Source: t.source}
	if via, err := c.reach.Route(t.addr); err == nil {
		rec.Via = via.String()
	}
	c.tried.Add(1)
	if n := c.active.Add(1); n > c.peak.Load() {
		for p := c.peak.Load(); n > p && !c.peak.CompareAndSwap(p, n); p = c.peak.Load() {
		}
	}
	defer func() {
		c.active.Add(-1)
		c.done.Add(1)
	}()

	// The session's context ends with a cause when the crawler ends the
	// session on its own terms (the timers of node).
	nodeCtx, end := context.WithCancelCause(ctx)
	defer end(nil)
	n := &node{c: c, end: end, source: rec.Addr, self: t.key, id: c.visits.Add(1)}
	log := c.sessLog.WithField("peer", rec.Addr)
	out := c.dialer.ConnectTo(nodeCtx, t.addr, log, peer.ConnectHooks{Hooks: peer.Hooks{Handshake: n.onHandshake, Addrs: n.onAddrs, Pong: n.onPong}, NoV2: t.noV2})
	n.stopTimers()
	c.fillAnnounced(rec, t.key)
	if !out.Connected {
		if ctx.Err() != nil {
			c.abandoned.Add(1)
			return
		}
		err := out.Err
		var de *peer.DialError
		if errors.As(err, &de) {
			err = de.Err
		}
		if f, label := netreach.Classify(err); f != netreach.FailureNone {
			// Through a proxy or the SAM bridge: its own classes.
			rec.Outcome = proxyOutcome(f)
			rec.Error = errorText(fmt.Errorf("%s: %w", label, err))
			c.finish(rec)
			return
		}
		rec.Outcome = classifyDial(err)
		if rec.Outcome == Timeout && errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("connect: timed out after %s", c.cfg.ConnectTimeout)
		}
		rec.Error = errorText(err)
		c.finish(rec)
		return
	}
	rec.ConnectMs = ms(out.ConnectLatency)
	rec.Transport = out.Transport
	c.record(rec, out, n, ctx.Err() != nil, context.Cause(nodeCtx))
}

// record completes rec from the outcome of a connection that opened and
// hands it on. interrupted says whether the crawl was, cause is why the
// session's context ended (one of the crawler's causes, or nil).
func (c *Crawler) record(rec *Record, out peer.Outcome, n *node, interrupted bool, cause error) {
	err := out.Err
	n.mu.Lock()
	handshook, addrs, fresh, msgs := n.handshook, n.addrs, n.fresh, n.msgs
	selfAnn, selfOther := n.selfAnnounced, n.selfOther
	n.mu.Unlock()
	var ended string
	switch {
	case interrupted:
		if !handshook {
			c.abandoned.Add(1)
			return
		}
		rec.Outcome, ended = Reachable, EndedInterrupted
	case endedBy(cause) != "" && handshook: // the timers start only after the handshake
		rec.Outcome, ended = Reachable, endedBy(cause)
	default:
		rec.Outcome = classifySession(err, handshook, addrs)
		if rec.Outcome == Reachable {
			ended = EndedPeerClosed
		} else if err != nil {
			rec.Error = errorText(err)
		}
	}
	if out.VersionSeen {
		info := out.Info
		v := info.Version
		rec.Handshake = &Handshake{
			Protocol:      v.Protocol,
			Services:      v.Services.Names(),
			ServiceBits:   uint64(v.Services),
			UserAgent:     v.UserAgent,
			StartHeight:   v.StartHeight,
			Relay:         v.Relay,
			AddrsReturned: addrs,
			AddrsNew:      fresh,
			AddrMessages:  msgs,
			SelfAnnounced: selfAnn,
			SelfOther:     selfOther,
		}
		if handshook {
			rec.Handshake.HandshakeMs = ms(info.HandshakeLatency)
		}
		if rec.Outcome == Reachable {
			rec.Handshake.Ended = ended
		}
	}
	c.finish(rec)
}
