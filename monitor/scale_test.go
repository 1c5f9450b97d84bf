package monitor

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcpipe/btcpipe/crawler"
	"github.com/btcpipe/btcpipe/internal/pgtest"
)

// The scale of the benchmark: 30 days of 10-minute snapshots of a
// 20,000-node network, 86.4 million node-observations
// (BTCPIPE_SCALE_NODES makes a smaller network, to try the benchmark out).
var (
	scaleNodes     = envInt("BTCPIPE_SCALE_NODES", 20_000)
	scaleSnapshots = 30 * 24 * 6
)

const scaleStep = 10 * time.Minute

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// scaleDB is a generated database, made once per backend per run.
type scaleDB struct {
	store    *Store
	api      http.Handler
	stable   []string // addresses of always-reachable nodes
	runs     int
	gen      time.Duration
	size     int64
	cleanup  func()
	err      error
	snapshot int64 // the newest snapshot
}

var (
	scaleMu  sync.Mutex
	scaleDBs = map[string]*scaleDB{}
)

func scaleFor(b *testing.B, backend string) *scaleDB {
	b.Helper()
	scaleMu.Lock()
	defer scaleMu.Unlock()
	if db, ok := scaleDBs[backend]; ok {
		if db.err != nil {
			b.Fatal(db.err)
		}
		return db
	}
	var dsn string
	db := &scaleDB{cleanup: func() {}}
	switch backend {
	case "sqlite":
		dir, err := os.MkdirTemp("", "btcpipe-scale-")
		if err != nil {
			b.Fatal(err)
		}
		db.cleanup = func() { os.RemoveAll(dir) }
		dsn = filepath.Join(dir, "btcpipe.db")
	case "postgres":
		dsn = pgtest.DB(b)
	}
	scaleDBs[backend] = db
	t0 := time.Now()
	db.err = generate(context.Background(), db, dsn)
	db.gen = time.Since(t0)
	if db.err != nil {
		b.Fatal(db.err)
	}
	if backend == "sqlite" {
		db.store.DB().Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
		for _, f := range []string{dsn, dsn + "-wal"} {
			if fi, err := os.Stat(f); err == nil {
				db.size += fi.Size()
			}
		}
	} else {
		db.store.DB().QueryRow(`SELECT pg_database_size(current_database())`).Scan(&db.size)
	}
	b.Logf("%s: generated %d snapshots × %d nodes (%d node-observations) as %d runs in %v; database %.0f MB",
		backend, scaleSnapshots, scaleNodes, scaleSnapshots*scaleNodes, db.runs, db.gen.Round(time.Second), float64(db.size)/1e6)
	return db
}

func stopScale() {
	for _, db := range scaleDBs {
		if db.store != nil {
			db.store.Close()
		}
		db.cleanup()
	}
}

// bulk inserts rows into table, many rows per statement, in tx.
type bulk struct {
	tx    *sql.Tx
	d     dialect
	table string
	cols  int
	rows  [][]any
	head  string
}

func newBulk(tx *sql.Tx, d dialect, table string, cols ...string) *bulk {
	return &bulk{tx: tx, d: d, table: table, cols: len(cols), head: "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES "}
}

func (b *bulk) add(ctx context.Context, row ...any) error {
	b.rows = append(b.rows, row)
	if len(b.rows)*b.cols >= 20_000 {
		return b.flush(ctx)
	}
	return nil
}

func (b *bulk) flush(ctx context.Context) error {
	if len(b.rows) == 0 {
		return nil
	}
	one := "(" + strings.TrimSuffix(strings.Repeat("?, ", b.cols), ", ") + ")"
	q := b.head + strings.TrimSuffix(strings.Repeat(one+", ", len(b.rows)), ", ")
	args := make([]any, 0, len(b.rows)*b.cols)
	for _, r := range b.rows {
		args = append(args, r...)
	}
	b.rows = b.rows[:0]
	_, err := b.tx.ExecContext(ctx, b.d.rebind(q), args...)
	return err
}

// generate fills a database as a monitor would have over 30 days: 80% of
// the nodes always reachable (5% of them upgrade their user agent once),
// 10% flapping (a 2% chance per snapshot of going up or down), 10% always
// refusing. It simulates every node over every snapshot (86 million steps,
// scores included) and writes the runs, the scores and the counts directly.
func generate(ctx context.Context, db *scaleDB, dsn string) error {
	s, err := Open(ctx, dsn, "bench", "mainnet")
	if err != nil {
		return err
	}
	db.store = s
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	snaps := newBulk(tx, s.d, "snapshots", "id", "vantage", "network", "started", "finished", "status", "discovered", "tried", "reachable", "records")
	reach := make([]int, scaleSnapshots)
	// Counts per snapshot of (dimension, key) pairs, indexed by ckeys.
	type ckey struct{ dim, key string }
	ckeys := map[ckey]int{}
	var cnames []ckey
	counts := make([][]int32, scaleSnapshots)
	cidx := func(dim, key string) int {
		k := ckey{dim, key}
		i, ok := ckeys[k]
		if !ok {
			i = len(cnames)
			ckeys[k] = i
			cnames = append(cnames, k)
		}
		return i
	}
	count := func(snap, key int) {
		c := counts[snap-1]
		for len(c) <= key {
			c = append(c, 0)
		}
		c[key]++
		counts[snap-1] = c
	}
	nodes := newBulk(tx, s.d, "nodes", "id", "addr", "network")
	runs := newBulk(tx, s.d, "runs", "node_id", "vantage", "first_snap", "last_snap", "first_time", "last_time", "n", "outcome", "protocol",
		"user_agent", "services", "relay", "transport", "first_height", "last_height", "connect_sum", "handshake_sum", "addrs_sum",
		"last_connect_ms", "last_handshake_ms", "last_addrs")
	stats := newBulk(tx, s.d, "node_stats", "node_id", "vantage", "first_seen", "last_seen", "last_try", "last_success", "total", "success",
		"w0", "c0", "r0", "w1", "c1", "r1", "w2", "c2", "r2", "w3", "c3", "r3", "w4", "c4", "r4",
		"outcome", "error", "protocol", "user_agent", "services", "start_height", "relay", "transport", "connect_ms", "handshake_ms", "addrs_returned")
	agents := []string{"/Satoshi:27.0.0/", "/Satoshi:27.1.0/", "/Satoshi:28.0.0/", "/Satoshi:28.1.0/", "/Satoshi:26.0.0/", "/Satoshi:25.0.0/",
		"/Satoshi:29.0.0/", "/btcd:0.24.2/", "/Satoshi:26.1.0(knots)/", "/Satoshi:24.0.1/"}
	rng := rand.New(rand.NewPCG(1, 2))
	for id := 1; id <= scaleNodes; id++ {
		addr := fmt.Sprintf("%d.%d.%d.%d:8333", 1+id%200, (id>>8)&255, id&255, 1+id%250)
		network := "ipv4"
		if id%7 == 0 {
			network = "ipv6"
			addr = fmt.Sprintf("[2001:db8:%x::%x]:8333", id>>8, id)
		}
		if err := nodes.add(ctx, id, addr, network); err != nil {
			return err
		}
		kind := id % 10 // 0: refused, 1: flapping, else stable
		if kind >= 2 && len(db.stable) < 1000 {
			db.stable = append(db.stable, addr)
		}
		ua := agents[rng.IntN(len(agents))]
		upgradeAt := -1
		if kind >= 2 && rng.IntN(20) == 0 {
			upgradeAt = rng.IntN(scaleSnapshots)
		}
		services := uint64(1033)
		if id%5 == 0 {
			services = 3081
		}
		up := kind != 0
		svcKey := cidx(DimServices, fmt.Sprintf("%016x", services))
		netKey, allNetKey := cidx(DimNetwork, network), cidx(DimAllNetwork, network)
		reachKey, refusedKey := cidx(DimOutcome, string(crawler.Reachable)), cidx(DimOutcome, string(crawler.Refused))
		protoKey, transportKey := cidx(DimProtocol, "70016"), cidx(DimTransport, "v1")
		uaKey := cidx(DimUserAgent, ua)
		var u Uptime
		var cur *struct {
			first, last, n int
			outcome, ua    string
			h0, h1         int32
			csum           float64
			lastC          float64
		}
		first := time.Time{}
		flush := func() error {
			if cur == nil {
				return nil
			}
			c := cur
			cur = nil
			proto, hs, addrs, relay, sv, ua := 70016, 2.0*float64(c.n), 1000*c.n, 1, int64(services), c.ua
			if c.outcome != string(crawler.Reachable) {
				proto, hs, addrs, relay, sv, ua = 0, 0, 0, 0, 0, ""
			}
			db.runs++
			return runs.add(ctx, id, "bench", c.first, c.last, start.Add(time.Duration(c.first-1)*scaleStep).UnixMilli(),
				start.Add(time.Duration(c.last-1)*scaleStep).UnixMilli(), c.n, c.outcome, proto, ua, sv, relay, "v1",
				c.h0, c.h1, c.csum, hs, addrs, c.lastC, 2.0, min(addrs, 1000))
		}
		for i := range scaleSnapshots {
			snap := i + 1
			at := start.Add(time.Duration(i) * scaleStep)
			if kind == 1 && rng.IntN(50) == 0 {
				up = !up
			}
			if i == upgradeAt {
				ua = "/Satoshi:29.0.0/"
				uaKey = cidx(DimUserAgent, ua)
			}
			outcome := string(crawler.Refused)
			if up {
				outcome = string(crawler.Reachable)
			}
			height := int32(900_000 + i)
			conn := 20 + float64(id%80)
			if cur != nil && (cur.outcome != outcome || cur.ua != ua || cur.n >= DefaultMaxRunSnapshots) {
				if err := flush(); err != nil {
					return err
				}
			}
			if cur == nil {
				cur = &struct {
					first, last, n int
					outcome, ua    string
					h0, h1         int32
					csum           float64
					lastC          float64
				}{first: snap, outcome: outcome, ua: ua, h0: height}
			}
			cur.last, cur.n, cur.h1, cur.csum, cur.lastC = snap, cur.n+1, height, cur.csum+conn, conn
			u.Observe(up, at)
			if first.IsZero() {
				first = at
			}
			count(snap, allNetKey)
			if up {
				reach[i]++
				for _, k := range [...]int{reachKey, netKey, protoKey, uaKey, svcKey, transportKey} {
					count(snap, k)
				}
			} else {
				count(snap, refusedKey)
			}
		}
		if err := flush(); err != nil {
			return err
		}
		row := []any{id, "bench", first.UnixMilli(), ms(u.LastSuccess), ms(u.LastTry), ms(u.LastSuccess), u.Total, u.Success}
		for _, st := range u.Stats {
			row = append(row, st.Weight, st.Count, st.Reliability)
		}
		outcome, proto, sua := string(crawler.Refused), 0, ""
		if up {
			outcome, proto, sua = string(crawler.Reachable), 70016, ua
		}
		row = append(row, outcome, "", proto, sua, int64(services), 900_000+scaleSnapshots-1, 1, "v1", 20.0, 2.0, 1000)
		if err := stats.add(ctx, row...); err != nil {
			return err
		}
	}
	for i := range scaleSnapshots {
		at := start.Add(time.Duration(i) * scaleStep)
		if err := snaps.add(ctx, i+1, "bench", "mainnet", at.UnixMilli(), at.Add(time.Minute).UnixMilli(), StatusComplete,
			scaleNodes, scaleNodes, reach[i], scaleNodes); err != nil {
			return err
		}
	}
	cb := newBulk(tx, s.d, "snapshot_counts", "snapshot_id", "dim", "key", "n")
	for i, c := range counts {
		for k, n := range c {
			if n == 0 {
				continue
			}
			if err := cb.add(ctx, i+1, cnames[k].dim, cnames[k].key, n); err != nil {
				return err
			}
		}
	}
	for _, b := range []*bulk{snaps, nodes, runs, stats, cb} {
		if err := b.flush(ctx); err != nil {
			return fmt.Errorf("%s: %w", b.table, err)
		}
	}
	if s.d == postgresDialect { // identity columns: continue after the ids given
		for _, t := range []string{"snapshots", "nodes"} {
			if _, err := tx.ExecContext(ctx, fmt.Sprintf(`SELECT setval(pg_get_serial_sequence('%s', 'id'), (SELECT MAX(id) FROM %s))`, t, t)); err != nil {
				return err
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if s.d == postgresDialect {
		s.db.ExecContext(ctx, `ANALYZE`)
	} else {
		s.db.ExecContext(ctx, `ANALYZE`)
	}
	db.snapshot = int64(scaleSnapshots)
	db.api = NewAPI(s, nil, nil).Handler()
	// A fresh store, as a restarted monitor would open it (loads the cache).
	s.Close()
	if db.store, err = Open(ctx, dsn, "bench", "mainnet"); err != nil {
		return err
	}
	db.api = NewAPI(db.store, nil, nil).Handler()
	return nil
}

func serve(b *testing.B, h http.Handler, url string) int {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", url, nil))
	if rec.Code != 200 {
		b.Fatalf("GET %s = %d %s", url, rec.Code, rec.Body.String())
	}
	return rec.Body.Len()
}

// BenchmarkScale measures, on 30 days of 10-minute snapshots of 20,000
// nodes: serving the latest snapshot whole (20,000 nodes as JSON), one
// node's 30-day history, the stats series, and storing one more snapshot of
// 20,000 nodes (WriteSnapshot, the monitor's own write path). It generates
// the data first (minutes; not timed): run it with make bench-monitor.
func BenchmarkScale(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			db := scaleFor(b, backend)
			b.Run("latest-snapshot", func(b *testing.B) {
				b.ReportAllocs()
				n := serve(b, db.api, fmt.Sprintf("/api/v1/snapshots/latest?limit=%d", MaxLimit))
				b.SetBytes(int64(n))
				for b.Loop() {
					serve(b, db.api, fmt.Sprintf("/api/v1/snapshots/latest?limit=%d", MaxLimit))
				}
				b.ReportMetric(float64(db.size)/1e6, "db-MB")
			})
			b.Run("latest-snapshot-from-db", func(b *testing.B) {
				// The same 20,000 nodes read from the database, as the
				// first request after a restart or for an older snapshot.
				b.ReportAllocs()
				for b.Loop() {
					var buf strings.Builder
					enc := json.NewEncoder(&buf)
					if _, err := db.store.eachNodeSQL(context.Background(), db.snapshot, NodeQuery{Limit: -1}, func(e *NodeEntry) error {
						return enc.Encode(e)
					}); err != nil {
						b.Fatal(err)
					}
					b.SetBytes(int64(buf.Len()))
				}
			})
			b.Run("latest-page-sorted-by-uptime", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					serve(b, db.api, "/api/v1/snapshots/latest?limit=100&sort=uptime&order=desc&q=satoshi:28")
				}
			})
			b.Run("node-history-30d", func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					serve(b, db.api, "/api/v1/nodes/"+db.stable[i%len(db.stable)]+"?since=2025-12-31T00:00:00Z")
					i++
				}
			})
			b.Run("stats-30d", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					serve(b, db.api, "/api/v1/stats?top=10&points=500")
				}
			})
			b.Run("write-snapshot", func(b *testing.B) {
				b.ReportAllocs()
				at := time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)
				for b.Loop() {
					at = at.Add(scaleStep)
					obs := make([]Observation, 0, scaleNodes)
					db.store.mu.Lock()
					for addr, ns := range db.store.nodes {
						o := Observation{Addr: addr, Network: ns.network, Outcome: crawler.Refused, Time: at, Transport: "v1"}
						if ns.run != nil && ns.run.st.outcome == crawler.Reachable {
							st := ns.run.st
							o = Observation{Addr: addr, Network: ns.network, Outcome: crawler.Reachable, Time: at, ConnectMs: 30, Version: true,
								Protocol: st.protocol, Services: st.services, UserAgent: st.userAgent, StartHeight: int32(900_000 + scaleSnapshots), Relay: st.relay,
								HandshakeMs: 2, AddrsReturned: 1000, Transport: "v1"}
						}
						obs = append(obs, o)
					}
					db.store.mu.Unlock()
					if err := db.store.WriteSnapshot(context.Background(), &Snapshot{Network: "mainnet", Started: at, Finished: at, Obs: obs}); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
