package monitor

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// benchLatest is a cache of n nodes of varied user agents, outcomes and
// uptimes, as the dashboard's node list reads it.
func benchLatest(n int) *latest {
	r := rand.New(rand.NewPCG(1, 2))
	entries := make([]NodeEntry, n)
	for i := range entries {
		e := &entries[i]
		e.Addr = fmt.Sprintf("10.%d.%d.%d:8333", i>>16, i>>8&255, i&255)
		e.Network, e.Outcome = "ipv4", "reachable"
		if r.IntN(3) == 0 {
			e.Outcome = "refused"
		}
		e.UserAgent = fmt.Sprintf("/Satoshi:%d.%d.0/", 22+r.IntN(8), r.IntN(3))
		e.Protocol, e.StartHeight = 70016, int32(900_000+r.IntN(1000))
		e.up.Stats[4].Reliability = r.Float64()
		t := time.Unix(1_800_000_000+int64(r.IntN(1e6)), 0)
		e.FirstSeen, e.LastSeen = &t, &t
	}
	c := &latest{}
	c.set(1, entries)
	return c
}

// BenchmarkLatestPage: one page of the dashboard's node list (100 nodes of
// 20,000, searched and sorted by uptime), served from the cached snapshot.
func BenchmarkLatestPage(b *testing.B) {
	c := benchLatest(20_000)
	q := NodeQuery{Sort: "uptime", Desc: true, Q: "satoshi:28", Limit: 100}
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		if _, err := c.each(q, func(*NodeEntry) error { n++; return nil }); err != nil || n != 100 {
			b.Fatal(err, n)
		}
	}
}
