package monitor

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/btcpipe/btcpipe/crawler"
	"github.com/btcpipe/btcpipe/wire"
)

// latest holds the nodes of the vantage's newest complete snapshot in
// memory, so that the page everyone asks for (and its searches, sorts and
// exports) is served without reading 20,000 rows. It is built after each
// snapshot is stored (WarmLatest) or on first use, and the re-checks update
// its scores in place.
type latest struct {
	mu      sync.Mutex
	id      int64
	entries []NodeEntry
	byAddr  map[string]int
	// lowAddr and lowUA are the entries' address and user agent in lower
	// case, for searches (they do not change with re-checks).
	lowAddr, lowUA []string
}

// WarmLatest loads the newest complete snapshot into memory (if it is not
// there already).
func (s *Store) WarmLatest(ctx context.Context) error {
	_, err := s.latestSnapshot(ctx)
	return err
}

// latestSnapshot returns the cache, built for the newest complete snapshot.
func (s *Store) latestSnapshot(ctx context.Context) (*latest, error) {
	s.mu.Lock()
	id := s.prevSnap
	s.mu.Unlock()
	c := &s.latest
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.id == id && c.entries != nil {
		return c, nil
	}
	var entries []NodeEntry
	if _, err := s.eachNodeSQL(ctx, id, NodeQuery{Limit: -1}, func(e *NodeEntry) error {
		entries = append(entries, *e)
		return nil
	}); err != nil {
		return nil, err
	}
	c.set(id, entries)
	return c, nil
}

// set makes the cache hold entries, of snapshot id. The caller holds c.mu.
func (c *latest) set(id int64, entries []NodeEntry) {
	c.id, c.entries, c.byAddr = id, entries, make(map[string]int, len(entries))
	c.lowAddr, c.lowUA = make([]string, len(entries)), make([]string, len(entries))
	for i := range entries {
		c.byAddr[entries[i].Addr] = i
		c.lowAddr[i], c.lowUA[i] = strings.ToLower(entries[i].Addr), strings.ToLower(entries[i].UserAgent)
	}
}

// observed updates the scores of the cached entries of nodes that a
// re-check observed.
func (s *Store) observed(nodes map[string]*nodeState) {
	c := &s.latest
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		return
	}
	np, _ := wire.NetworkByName(s.network)
	for addr, ns := range nodes {
		i, ok := c.byAddr[addr]
		if !ok {
			continue
		}
		e := &c.entries[i]
		e.up = ns.up
		e.Uptime, e.LastSeen = uptimePercent(&ns.up), timePtr(ns.up.LastSuccess)
		if np != nil {
			e.Good = e.Outcome == string(crawler.Reachable) && SeedGood(&ns.up, portOf(e.Addr), np.DefaultPort, e.Services, e.Protocol)
		}
	}
}

// less orders the entries by a sort key (SortKeys), then by address.
var lessBy = map[string]func(a, b *NodeEntry) int{
	"addr":       func(a, b *NodeEntry) int { return 0 },
	"network":    func(a, b *NodeEntry) int { return strings.Compare(a.Network, b.Network) },
	"outcome":    func(a, b *NodeEntry) int { return strings.Compare(a.Outcome, b.Outcome) },
	"user_agent": func(a, b *NodeEntry) int { return strings.Compare(a.UserAgent, b.UserAgent) },
	"protocol":   func(a, b *NodeEntry) int { return cmp(a.Protocol, b.Protocol) },
	"services":   func(a, b *NodeEntry) int { return cmp(int64(a.Services), int64(b.Services)) },
	"height":     func(a, b *NodeEntry) int { return cmp(a.StartHeight, b.StartHeight) },
	"latency":    func(a, b *NodeEntry) int { return cmp(a.ConnectMs, b.ConnectMs) },
	"uptime":     func(a, b *NodeEntry) int { return cmp(a.up.Stats[4].Reliability, b.up.Stats[4].Reliability) },
	"uptime_2h":  func(a, b *NodeEntry) int { return cmp(a.up.Stats[0].Reliability, b.up.Stats[0].Reliability) },
	"uptime_8h":  func(a, b *NodeEntry) int { return cmp(a.up.Stats[1].Reliability, b.up.Stats[1].Reliability) },
	"uptime_1d":  func(a, b *NodeEntry) int { return cmp(a.up.Stats[2].Reliability, b.up.Stats[2].Reliability) },
	"uptime_7d":  func(a, b *NodeEntry) int { return cmp(a.up.Stats[3].Reliability, b.up.Stats[3].Reliability) },
	"uptime_30d": func(a, b *NodeEntry) int { return cmp(a.up.Stats[4].Reliability, b.up.Stats[4].Reliability) },
	"first_seen": func(a, b *NodeEntry) int { return cmp(unixMs(a.FirstSeen), unixMs(b.FirstSeen)) },
	"last_seen":  func(a, b *NodeEntry) int { return cmp(unixMs(a.LastSeen), unixMs(b.LastSeen)) },
}

func cmp[T int32 | int64 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func unixMs(t *time.Time) int64 {
	if t == nil {
		return 0
	}
	return t.UnixMilli()
}

// each is EachNode on the cache. It selects and sorts indices, and copies
// out (under the lock, as re-checks update entries) only the entries of the
// page asked for: a page of 50 costs 50 copies, not one per node.
func (c *latest) each(q NodeQuery, fn func(*NodeEntry) error) (int, error) {
	q.Q = strings.ToLower(q.Q)
	key := q.Sort
	if key == "" {
		key = "addr"
	}
	by := lessBy[key]
	c.mu.Lock()
	sel := make([]int32, 0, len(c.entries))
	for i := range c.entries {
		e := &c.entries[i]
		if q.Network != "" && e.Network != q.Network || q.Outcome != "" && e.Outcome != q.Outcome {
			continue
		}
		if q.Q != "" && !strings.Contains(c.lowAddr[i], q.Q) && !strings.Contains(c.lowUA[i], q.Q) {
			continue
		}
		sel = append(sel, int32(i))
	}
	slices.SortFunc(sel, func(i, j int32) int {
		a, b := &c.entries[i], &c.entries[j]
		r := by(a, b)
		if r == 0 {
			r = strings.Compare(a.Addr, b.Addr)
		}
		if q.Desc {
			return -r
		}
		return r
	})
	total := len(sel)
	if q.Limit >= 0 {
		lo := min(q.Offset, total)
		sel = sel[lo:min(lo+q.Limit, total)]
	}
	page := make([]NodeEntry, len(sel))
	for k, i := range sel {
		page[k] = c.entries[i]
	}
	c.mu.Unlock()
	for i := range page {
		if err := fn(&page[i]); err != nil {
			return total, err
		}
	}
	return total, nil
}
