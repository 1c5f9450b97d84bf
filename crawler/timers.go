package crawler

import (
	"context"
	"sync"
	"time"

	"github.com/btcpipe/btcpipe/peer"
	"github.com/btcpipe/btcpipe/wire"
)

// node is the state of one session, shared by its hooks and timers.
type node struct {
	c      *Crawler
	end    context.CancelCauseFunc
	source string

	mu        sync.Mutex
	handshook bool
	addrs     int
	fresh     int
	stopped   bool
	quiet     *time.Timer
	deadline  *time.Timer
}

func (n *node) onHandshake(peer.Info) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.handshook = true
	if !n.stopped {
		n.deadline = time.AfterFunc(n.c.cfg.GetAddrTimeout, func() { n.end(errGetAddrTimeout) })
	}
}

// onAddrs learns list (valid only during the call) and (re)starts the
// quiet timer.
func (n *node) onAddrs(list []wire.NetAddrV2) {
	fresh := n.c.learn(list, n.source)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.addrs += len(list)
	n.fresh += fresh
	switch {
	case n.stopped, !n.handshook: // the handshake timeout bounds what comes before it
	case n.addrs >= n.c.cfg.MaxAddrsPerNode:
		n.end(errAddrCap)
	case n.quiet == nil:
		n.quiet = time.AfterFunc(n.c.cfg.Quiet, func() { n.end(errQuiet) })
	default:
		n.quiet.Reset(n.c.cfg.Quiet)
	}
}

func (n *node) stopTimers() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.stopped = true
	for _, t := range []*time.Timer{n.quiet, n.deadline} {
		if t != nil {
			t.Stop()
		}
	}
}
