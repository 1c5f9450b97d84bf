package crawler

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/btcpipe/btcpipe/peer"
	"github.com/btcpipe/btcpipe/wire"
)

// Limits of the getaddr answers of the two implementations (see the
// package documentation, "When an answer is complete").
const (
	// MaxAddrPerMessage is the most entries an addr/addrv2 message may
	// carry (Bitcoin Core's MAX_ADDR_TO_SEND; btcd's MaxAddrPerMsg).
	MaxAddrPerMessage = 1000
	// btcdMaxAnswer is the most entries btcd sends in answer to getaddr
	// (wire.MaxAddrPerMsg × 2.5: 2,500 in messages of 1,000).
	btcdMaxAnswer = 2500
)

// node is the state of one session, shared by its hooks and timers.
type node struct {
	c      *Crawler
	end    context.CancelCauseFunc
	source string
	self   addrKey // the address dialled
	id     uint64  // the visit's number, as a source of addresses

	mu            sync.Mutex
	handshook     bool
	onePass       bool // the peer answers getaddr in one message (Bitcoin Core)
	addrs         int  // answer entries, the self-announcement apart
	fresh         int
	msgs          int // answer messages
	selfAnnounced string
	selfOther     []string
	selfFirst     bool // a self-announcement came before any answer
	stopped       bool
	quiet         *time.Timer
	deadline      *time.Timer
}

func (n *node) onHandshake(info peer.Info) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.handshook = true
	n.onePass = strings.HasPrefix(info.Version.UserAgent, "/Satoshi:")
	if !n.stopped {
		n.deadline = time.AfterFunc(n.c.cfg.GetAddrTimeout, func() { n.end(errGetAddrTimeout) })
	}
}

// maxSelfOther bounds Handshake.SelfOther.
const maxSelfOther = 4

// onAddrs learns list (valid only during the call) and applies the
// end-of-answer rule.
func (n *node) onAddrs(list []wire.NetAddrV2) {
	// The self-announcement: an entry naming the address dialled, or the
	// one entry of a first message before any answer (a node announces
	// the address it listens on, which may differ from the one we used,
	// or be on another of its networks).
	self := 0
	var selfName string
	var other []string
	for _, a := range list {
		if keyOf(normalise(a)) == n.self {
			self++
			selfName = normalise(a).String()
		}
	}
	n.mu.Lock()
	first := n.msgs == 0 && n.selfAnnounced == ""
	n.mu.Unlock()
	if self == 0 && first && len(list) == 1 {
		a := normalise(list[0])
		if a.Network != n.self.network {
			self, selfName = 1, a.String()
			other = append(other, selfName)
		}
	}
	fresh := n.c.learn(list, n.source, n.id)

	n.mu.Lock()
	defer n.mu.Unlock()
	if selfName != "" && n.selfAnnounced == "" {
		n.selfAnnounced = selfName
	}
	for _, o := range other {
		if len(n.selfOther) < maxSelfOther {
			n.selfOther = append(n.selfOther, o)
		}
	}
	answer := len(list) - self
	n.fresh += fresh
	if answer <= 0 {
		if n.msgs == 0 {
			n.selfFirst = true
		}
		return
	}
	n.addrs += answer
	n.msgs++
	switch {
	case n.stopped, !n.handshook: // the handshake timeout bounds what comes before it
	case n.addrs >= n.c.cfg.MaxAddrsPerNode:
		n.end(errAddrCap)
	case len(list) < MaxAddrPerMessage, n.onePass, n.addrs >= btcdMaxAnswer:
		// A short message is the last of an answer (Core's one pass, or
		// btcd's last chunk); Core sends even 1,000 in one pass; btcd
		// sends at most 2,500.
		n.end(errAnswer)
	case n.quiet == nil:
		n.quiet = time.AfterFunc(n.c.cfg.Quiet, func() { n.end(errQuiet) })
	default:
		n.quiet.Reset(n.c.cfg.Quiet)
	}
}

// onPong ends the session when the pong to the ping sent right after
// getaddr arrives: both Bitcoin Core and btcd answer messages in order, so
// the whole answer (or nothing, when they have nothing) came before it. The
// exception is a peer whose self-announcement came first: older Bitcoin
// Core versions then send the answer on their next address trickle (30 s
// mean), so the session waits for it, up to the getaddr timeout.
func (n *node) onPong(time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case n.stopped, !n.handshook:
	case n.msgs > 0:
		n.end(errAnswer)
	case n.selfFirst:
	default:
		n.end(errNoAnswer)
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
