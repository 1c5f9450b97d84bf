package monitor

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // the "sqlite" driver, pure Go (no cgo)

	"github.com/btcpipe/btcpipe/crawler"
)

// DefaultMaxRunSnapshots cuts a run after this many snapshots even when
// nothing changed (36 ten-minute snapshots: 6 hours), so that latency and
// height over time keep that resolution and no row grows forever.
const DefaultMaxRunSnapshots = 36

// Snapshot statuses.
const (
	StatusRunning     = "running"     // the crawl is under way (or the monitor died during it)
	StatusComplete    = "complete"    // stored whole
	StatusInterrupted = "interrupted" // the crawl or the monitor was stopped before it was stored
)

// ErrNotFound is returned for a snapshot or node the store does not have.
var ErrNotFound = errors.New("monitor: not found")

// Observation is what one crawl (or re-check) learned about one address:
// a crawler.Record with its strings copied, so it can be kept.
type Observation struct {
	Addr, Network string
	Outcome       crawler.Outcome
	Error         string
	Time          time.Time
	ConnectMs     float64
	// Version is whether the peer sent its version (the fields below are
	// zero otherwise).
	Version       bool
	Protocol      int32
	Services      uint64
	UserAgent     string
	StartHeight   int32
	Relay         bool
	HandshakeMs   float64
	AddrsReturned int
	// Transport is the transport the connection spoke, "v1" or "v2"
	// (BIP324); empty when no connection was made.
	Transport string
}

// ObservationOf copies r.
func ObservationOf(r *crawler.Record) Observation {
	o := Observation{
		Addr: strings.Clone(r.Addr), Network: strings.Clone(r.Network), Outcome: r.Outcome,
		Error: strings.Clone(r.Error), Time: r.Time, ConnectMs: r.ConnectMs, Transport: r.Transport,
	}
	if h := r.Handshake; h != nil {
		o.Version = true
		o.Protocol, o.Services, o.UserAgent = h.Protocol, h.ServiceBits, strings.Clone(h.UserAgent)
		o.StartHeight, o.Relay, o.HandshakeMs, o.AddrsReturned = h.StartHeight, h.Relay, h.HandshakeMs, h.AddrsReturned
	}
	return o
}

// Snapshot is one crawl held in memory until it is stored.
type Snapshot struct {
	// ID is the snapshot row made when the crawl started (0: none could
	// be made, WriteSnapshot makes it).
	ID                int64
	Network           string
	Started, Finished time.Time
	Summary           crawler.Summary
	Obs               []Observation
}

// state is what a run holds constant.
type state struct {
	outcome   crawler.Outcome
	protocol  int32
	userAgent string
	services  uint64
	relay     bool
	transport string
}

func stateOf(o *Observation) state {
	return state{o.Outcome, o.Protocol, o.UserAgent, o.Services, o.Relay, o.Transport}
}

// openRun is a node's run that the next snapshot may extend.
type openRun struct {
	id          int64
	first, last int64 // snapshot ids
	n           int
	st          state
}

// nodeState is what the store keeps in memory about a node (for its
// vantage): enough to extend runs and update scores without reading.
type nodeState struct {
	id        int64
	network   string
	run       *openRun
	up        Uptime
	firstSeen time.Time
	hasStats  bool
	port      uint16
}

// Store is the monitor's database, for one vantage. Writes (WriteSnapshot,
// Observe) are serialised; reads may run concurrently with them.
type Store struct {
	db      *sql.DB
	d       dialect
	vantage string
	network string
	// MaxRunSnapshots: see DefaultMaxRunSnapshots.
	maxRun int

	mu       sync.Mutex // serialises writes and guards what follows
	nodes    map[string]*nodeState
	prevSnap int64 // the last complete snapshot of the vantage

	latest latest // the nodes of snapshot prevSnap, in memory
}

// IsPostgres reports whether dsn names a PostgreSQL database
// (postgres:// or postgresql://); anything else is an SQLite file.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// sqliteDSN turns a file name (or a file: URI) into the driver's DSN, with
// WAL (readers do not block the writer), a busy timeout and foreign keys.
func sqliteDSN(path string) string {
	if !strings.HasPrefix(path, "file:") {
		path = "file:" + path
	}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return path + sep + "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=mmap_size(1073741824)"
}

// Open opens (creating, for SQLite) the database dsn, applies the
// migrations, records vantage as started (which proves the database can be
// written), marks the vantage's snapshots left "running" by a killed
// monitor "interrupted", and loads what the vantage knows of every node.
func Open(ctx context.Context, dsn, vantage, network string) (*Store, error) {
	if vantage == "" {
		return nil, errors.New("monitor: empty vantage name")
	}
	d, driver, source := sqliteDialect, "sqlite", sqliteDSN(dsn)
	if IsPostgres(dsn) {
		d, driver, source = postgresDialect, "pgx", dsn
	}
	db, err := sql.Open(driver, source)
	if err != nil {
		return nil, fmt.Errorf("monitor: %w", err)
	}
	if d == sqliteDialect {
		db.SetMaxOpenConns(8)
	} else {
		db.SetMaxOpenConns(16)
	}
	s := &Store{db: db, d: d, vantage: vantage, network: network, maxRun: DefaultMaxRunSnapshots, nodes: map[string]*nodeState{}}
	if err := s.open(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) open(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("monitor: cannot reach the database: %w", err)
	}
	if err := migrate(ctx, s.db, s.d); err != nil {
		return err
	}
	// The write probe: a read-only database fails here, at start.
	if _, err := s.exec(ctx, s.db, `INSERT INTO vantages (name, network, started) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET network = excluded.network, started = excluded.started`,
		s.vantage, s.network, time.Now().UnixMilli()); err != nil {
		return fmt.Errorf("monitor: cannot write to the database: %w", err)
	}
	if _, err := s.exec(ctx, s.db, `UPDATE snapshots SET status = ? WHERE vantage = ? AND status = ?`,
		StatusInterrupted, s.vantage, StatusRunning); err != nil {
		return fmt.Errorf("monitor: marking interrupted snapshots: %w", err)
	}
	return s.load(ctx)
}

// SetMaxRunSnapshots changes the longest run (n < 1: the default).
func (s *Store) SetMaxRunSnapshots(n int) {
	if n < 1 {
		n = DefaultMaxRunSnapshots
	}
	s.mu.Lock()
	s.maxRun = n
	s.mu.Unlock()
}

// DB returns the database handle (for tests and benchmarks).
func (s *Store) DB() *sql.DB { return s.db }

// Dialect returns "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.d.name }

// Vantage returns the store's vantage name.
func (s *Store) Vantage() string { return s.vantage }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func (s *Store) exec(ctx context.Context, e execer, q string, args ...any) (sql.Result, error) {
	return e.ExecContext(ctx, s.d.rebind(q), args...)
}

func (s *Store) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return s.db.QueryContext(ctx, s.d.rebind(q), args...)
}

func (s *Store) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return s.db.QueryRowContext(ctx, s.d.rebind(q), args...)
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMs(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

func b01(b bool) int {
	if b {
		return 1
	}
	return 0
}

// portOf returns the port of host:port (0 if none).
func portOf(addr string) uint16 {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return 0
	}
	p, _ := strconv.ParseUint(addr[i+1:], 10, 16)
	return uint16(p)
}

// load reads the vantage's node scores and open runs.
func (s *Store) load(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.queryRow(ctx, `SELECT COALESCE(MAX(id), 0) FROM snapshots WHERE vantage = ? AND status = ?`,
		s.vantage, StatusComplete).Scan(&s.prevSnap); err != nil {
		return fmt.Errorf("monitor: loading: %w", err)
	}
	rows, err := s.query(ctx, `SELECT n.id, n.addr, n.network, st.first_seen, st.last_try, st.last_success, st.total, st.success,
		st.w0, st.c0, st.r0, st.w1, st.c1, st.r1, st.w2, st.c2, st.r2, st.w3, st.c3, st.r3, st.w4, st.c4, st.r4
		FROM node_stats st JOIN nodes n ON n.id = st.node_id WHERE st.vantage = ?`, s.vantage)
	if err != nil {
		return fmt.Errorf("monitor: loading: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		ns := &nodeState{hasStats: true}
		var addr string
		var first, try, succ int64
		u := &ns.up
		dst := []any{&ns.id, &addr, &ns.network, &first, &try, &succ, &u.Total, &u.Success}
		for i := range u.Stats {
			dst = append(dst, &u.Stats[i].Weight, &u.Stats[i].Count, &u.Stats[i].Reliability)
		}
		if err := rows.Scan(dst...); err != nil {
			return fmt.Errorf("monitor: loading: %w", err)
		}
		ns.firstSeen, u.LastTry, u.LastSuccess = fromMs(first), fromMs(try), fromMs(succ)
		ns.port = portOf(addr)
		s.nodes[addr] = ns
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("monitor: loading: %w", err)
	}
	rows.Close()
	if s.prevSnap == 0 {
		return nil
	}
	rows, err = s.query(ctx, `SELECT n.addr, r.id, r.first_snap, r.last_snap, r.n, r.outcome, r.protocol, r.user_agent,
		r.services, r.relay, r.transport FROM runs r JOIN nodes n ON n.id = r.node_id
		WHERE r.vantage = ? AND r.last_snap = ?`, s.vantage, s.prevSnap)
	if err != nil {
		return fmt.Errorf("monitor: loading runs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var addr string
		var r openRun
		var services int64
		var relay int
		if err := rows.Scan(&addr, &r.id, &r.first, &r.last, &r.n, &r.st.outcome, &r.st.protocol, &r.st.userAgent,
			&services, &relay, &r.st.transport); err != nil {
			return fmt.Errorf("monitor: loading runs: %w", err)
		}
		r.st.services, r.st.relay = uint64(services), relay != 0
		if ns := s.nodes[addr]; ns != nil {
			ns.run = &r
		}
	}
	return rows.Err()
}

// BeginSnapshot records that a crawl started (status running) and returns
// the new snapshot's id.
func (s *Store) BeginSnapshot(ctx context.Context, started time.Time) (int64, error) {
	var id int64
	err := s.db.QueryRowContext(ctx, s.d.rebind(`INSERT INTO snapshots (vantage, network, started, status) VALUES (?, ?, ?, ?) RETURNING id`),
		s.vantage, s.network, ms(started), StatusRunning).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("monitor: starting a snapshot: %w", err)
	}
	return id, nil
}

// MarkInterrupted marks snapshot id interrupted (a crawl stopped before
// its end is not stored).
func (s *Store) MarkInterrupted(ctx context.Context, id int64, finished time.Time) error {
	_, err := s.exec(ctx, s.db, `UPDATE snapshots SET status = ?, finished = ?, crawl_interrupted = 1 WHERE id = ? AND vantage = ?`,
		StatusInterrupted, ms(finished), id, s.vantage)
	if err != nil {
		return fmt.Errorf("monitor: marking snapshot %d interrupted: %w", id, err)
	}
	return nil
}

// plan is what a write changes in the in-memory state, applied only once
// the transaction has committed (so a failed write can simply be retried).
type plan struct {
	nodes    map[string]*nodeState // new or changed states (copies)
	prevSnap int64
}

func (p *plan) state(s *Store, addr string) *nodeState {
	if ns, ok := p.nodes[addr]; ok {
		return ns
	}
	ns := &nodeState{}
	if old := s.nodes[addr]; old != nil {
		*ns = *old
		if old.run != nil {
			r := *old.run
			ns.run = &r
		}
	}
	p.nodes[addr] = ns
	return ns
}

func (s *Store) apply(p *plan) {
	for addr, ns := range p.nodes {
		s.nodes[addr] = ns
	}
	if p.prevSnap != 0 {
		s.prevSnap = p.prevSnap
	}
}

// dedup keeps the last observation of each address.
func dedup(obs []Observation) []Observation {
	idx := make(map[string]int, len(obs))
	out := make([]Observation, 0, len(obs))
	for _, o := range obs {
		if i, ok := idx[o.Addr]; ok {
			out[i] = o
			continue
		}
		idx[o.Addr] = len(out)
		out = append(out, o)
	}
	return out
}

// WriteSnapshot stores snap in one transaction: every node's run is
// extended or a new one begun, its scores updated, the snapshot's counts
// written and its status set complete. On error nothing is changed (in the
// database or in memory) and the same snap may be written again.
func (s *Store) WriteSnapshot(ctx context.Context, snap *Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	obs := dedup(snap.Obs)
	p := &plan{nodes: make(map[string]*nodeState, len(obs))}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("monitor: writing a snapshot: %w", err)
	}
	defer tx.Rollback() // after Commit: a no-op
	id := snap.ID
	if id == 0 {
		if err := tx.QueryRowContext(ctx, s.d.rebind(`INSERT INTO snapshots (vantage, network, started, status) VALUES (?, ?, ?, ?) RETURNING id`),
			s.vantage, s.network, ms(snap.Started), StatusRunning).Scan(&id); err != nil {
			return fmt.Errorf("monitor: writing a snapshot: %w", err)
		}
	}
	w, err := s.prepare(ctx, tx)
	if err != nil {
		return err
	}
	defer w.close()
	reachable := 0
	for i := range obs {
		o := &obs[i]
		if o.Outcome == crawler.Reachable {
			reachable++
		}
		ns := p.state(s, o.Addr)
		if err := w.node(ctx, s, ns, o); err != nil {
			return fmt.Errorf("monitor: writing snapshot %d: node %s: %w", id, o.Addr, err)
		}
		if err := w.run(ctx, s, ns, o, id); err != nil {
			return fmt.Errorf("monitor: writing snapshot %d: node %s: %w", id, o.Addr, err)
		}
		ns.up.Observe(o.Outcome == crawler.Reachable, o.Time)
		if err := w.stats(ctx, s, ns, o); err != nil {
			return fmt.Errorf("monitor: writing snapshot %d: node %s: %w", id, o.Addr, err)
		}
	}
	counts := Counts(obs)
	for _, dim := range sortedKeys(counts) {
		for key, n := range counts[dim] {
			if _, err := w.count.ExecContext(ctx, id, dim, key, n); err != nil {
				return fmt.Errorf("monitor: writing snapshot %d counts: %w", id, err)
			}
		}
	}
	sum := snap.Summary
	if _, err := s.exec(ctx, tx, `UPDATE snapshots SET status = ?, finished = ?, discovered = ?, tried = ?, reachable = ?, records = ?, crawl_interrupted = ? WHERE id = ?`,
		StatusComplete, ms(snap.Finished), sum.Discovered, sum.Tried, reachable, len(obs), b01(sum.Interrupted), id); err != nil {
		return fmt.Errorf("monitor: completing snapshot %d: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("monitor: committing snapshot %d: %w", id, err)
	}
	snap.ID = id
	p.prevSnap = id
	s.apply(p)
	return nil
}

// Observe stores re-check observations: they update the scores and last
// values of known nodes (one transaction), not the snapshots' runs.
// Observations of addresses the store does not know are ignored.
func (s *Store) Observe(ctx context.Context, obs []Observation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := &plan{nodes: make(map[string]*nodeState, len(obs))}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("monitor: storing re-checks: %w", err)
	}
	defer tx.Rollback()
	w, err := s.prepare(ctx, tx)
	if err != nil {
		return err
	}
	defer w.close()
	obs = dedup(obs)
	for i := range obs {
		o := &obs[i]
		if s.nodes[o.Addr] == nil {
			continue
		}
		ns := p.state(s, o.Addr)
		ns.up.Observe(o.Outcome == crawler.Reachable, o.Time)
		if err := w.stats(ctx, s, ns, o); err != nil {
			return fmt.Errorf("monitor: storing re-check of %s: %w", o.Addr, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("monitor: storing re-checks: %w", err)
	}
	s.apply(p)
	s.observed(p.nodes)
	return nil
}

// writer holds a write transaction's prepared statements.
type writer struct {
	tx                                        *sql.Tx
	addNode, newRun, extendRun, upsert, count *sql.Stmt
}

func (s *Store) prepare(ctx context.Context, tx *sql.Tx) (*writer, error) {
	w := &writer{tx: tx}
	for _, q := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&w.addNode, `INSERT INTO nodes (addr, network) VALUES (?, ?) ON CONFLICT (addr) DO UPDATE SET network = excluded.network RETURNING id`},
		{&w.newRun, `INSERT INTO runs (node_id, vantage, first_snap, last_snap, first_time, last_time, n, outcome, protocol, user_agent,
			services, relay, transport, first_height, last_height, connect_sum, handshake_sum, addrs_sum, last_connect_ms, last_handshake_ms, last_addrs)
			VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`},
		{&w.extendRun, `UPDATE runs SET last_snap = ?, last_time = ?, n = n + 1, last_height = ?, connect_sum = connect_sum + ?,
			handshake_sum = handshake_sum + ?, addrs_sum = addrs_sum + ?, last_connect_ms = ?, last_handshake_ms = ?, last_addrs = ? WHERE id = ?`},
		{&w.upsert, `INSERT INTO node_stats (node_id, vantage, first_seen, last_seen, last_try, last_success, total, success,
			w0, c0, r0, w1, c1, r1, w2, c2, r2, w3, c3, r3, w4, c4, r4,
			outcome, error, protocol, user_agent, services, start_height, relay, transport, connect_ms, handshake_ms, addrs_returned)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (node_id, vantage) DO UPDATE SET last_seen = excluded.last_seen, last_try = excluded.last_try,
			last_success = excluded.last_success, total = excluded.total, success = excluded.success,
			w0 = excluded.w0, c0 = excluded.c0, r0 = excluded.r0, w1 = excluded.w1, c1 = excluded.c1, r1 = excluded.r1,
			w2 = excluded.w2, c2 = excluded.c2, r2 = excluded.r2, w3 = excluded.w3, c3 = excluded.c3, r3 = excluded.r3,
			w4 = excluded.w4, c4 = excluded.c4, r4 = excluded.r4, outcome = excluded.outcome, error = excluded.error,
			protocol = CASE WHEN excluded.protocol <> 0 THEN excluded.protocol ELSE node_stats.protocol END,
			user_agent = CASE WHEN excluded.protocol <> 0 THEN excluded.user_agent ELSE node_stats.user_agent END,
			services = CASE WHEN excluded.protocol <> 0 THEN excluded.services ELSE node_stats.services END,
			start_height = CASE WHEN excluded.protocol <> 0 THEN excluded.start_height ELSE node_stats.start_height END,
			relay = CASE WHEN excluded.protocol <> 0 THEN excluded.relay ELSE node_stats.relay END,
			transport = excluded.transport, connect_ms = excluded.connect_ms, handshake_ms = excluded.handshake_ms,
			addrs_returned = excluded.addrs_returned`},
		{&w.count, `INSERT INTO snapshot_counts (snapshot_id, dim, key, n) VALUES (?, ?, ?, ?)`},
	} {
		st, err := tx.PrepareContext(ctx, s.d.rebind(q.sql))
		if err != nil {
			w.close()
			return nil, fmt.Errorf("monitor: preparing: %w", err)
		}
		*q.dst = st
	}
	return w, nil
}

func (w *writer) close() {
	for _, st := range []*sql.Stmt{w.addNode, w.newRun, w.extendRun, w.upsert, w.count} {
		if st != nil {
			st.Close()
		}
	}
}

// node makes sure ns has a node id.
func (w *writer) node(ctx context.Context, s *Store, ns *nodeState, o *Observation) error {
	if ns.id != 0 && ns.network == o.Network {
		return nil
	}
	if err := w.addNode.QueryRowContext(ctx, o.Addr, o.Network).Scan(&ns.id); err != nil {
		return err
	}
	ns.network, ns.port = o.Network, portOf(o.Addr)
	return nil
}

// run extends ns's open run with o, or begins a new one.
func (w *writer) run(ctx context.Context, s *Store, ns *nodeState, o *Observation, snap int64) error {
	st := stateOf(o)
	if r := ns.run; r != nil && r.last == s.prevSnap && s.prevSnap != 0 && r.st == st && r.n < s.maxRun {
		if _, err := w.extendRun.ExecContext(ctx, snap, ms(o.Time), o.StartHeight, o.ConnectMs, o.HandshakeMs, o.AddrsReturned,
			o.ConnectMs, o.HandshakeMs, o.AddrsReturned, r.id); err != nil {
			return err
		}
		r.last = snap
		r.n++
		return nil
	}
	r := &openRun{first: snap, last: snap, n: 1, st: st}
	if err := w.newRun.QueryRowContext(ctx, ns.id, s.vantage, snap, snap, ms(o.Time), ms(o.Time), string(o.Outcome), o.Protocol, o.UserAgent,
		int64(o.Services), b01(o.Relay), o.Transport, o.StartHeight, o.StartHeight, o.ConnectMs, o.HandshakeMs, o.AddrsReturned,
		o.ConnectMs, o.HandshakeMs, o.AddrsReturned).Scan(&r.id); err != nil {
		return err
	}
	ns.run = r
	return nil
}

// stats writes ns's scores (already updated with o) and o's values.
func (w *writer) stats(ctx context.Context, s *Store, ns *nodeState, o *Observation) error {
	if !ns.hasStats {
		ns.firstSeen = o.Time
		ns.hasStats = true
	}
	u := &ns.up
	args := []any{ns.id, s.vantage, ms(ns.firstSeen), ms(u.LastSuccess), ms(u.LastTry), ms(u.LastSuccess), u.Total, u.Success}
	for _, st := range u.Stats {
		args = append(args, st.Weight, st.Count, st.Reliability)
	}
	args = append(args, string(o.Outcome), o.Error, o.Protocol, o.UserAgent, int64(o.Services), o.StartHeight, b01(o.Relay),
		o.Transport, o.ConnectMs, o.HandshakeMs, o.AddrsReturned)
	_, err := w.upsert.ExecContext(ctx, args...)
	return err
}

// Count dimensions of a snapshot (snapshot_counts.dim). Outcome counts
// every record; the others count reachable nodes only.
const (
	DimOutcome    = "outcome"
	DimNetwork    = "network"
	DimProtocol   = "protocol"
	DimUserAgent  = "user_agent"
	DimServices   = "services" // the exact service bits, as 16 hex digits
	DimTransport  = "transport"
	DimAllNetwork = "network_all" // every record by network
)

// Dims lists the count dimensions.
var Dims = []string{DimOutcome, DimAllNetwork, DimNetwork, DimProtocol, DimUserAgent, DimServices, DimTransport}

// Counts counts obs by every dimension.
func Counts(obs []Observation) map[string]map[string]int {
	c := map[string]map[string]int{}
	for _, d := range Dims {
		c[d] = map[string]int{}
	}
	for i := range obs {
		o := &obs[i]
		c[DimOutcome][string(o.Outcome)]++
		c[DimAllNetwork][o.Network]++
		if o.Outcome != crawler.Reachable {
			continue
		}
		c[DimNetwork][o.Network]++
		c[DimProtocol][strconv.Itoa(int(o.Protocol))]++
		c[DimUserAgent][o.UserAgent]++
		c[DimServices][fmt.Sprintf("%016x", o.Services)]++
		c[DimTransport][o.Transport]++
	}
	return c
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Due returns up to limit IPv4 and IPv6 addresses worth re-checking at now:
// nodes reachable at least once in the last 7 days whose scores are not
// Settled and whose last try is at least every ago, plus settled ones whose
// last try is four times that old. Longest untried first.
func (s *Store) Due(now time.Time, every time.Duration, limit int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	type due struct {
		addr string
		last time.Time
	}
	var list []due
	for addr, ns := range s.nodes {
		if ns.network != "ipv4" && ns.network != "ipv6" || !ns.hasStats || ns.up.LastSuccess.IsZero() ||
			now.Sub(ns.up.LastSuccess) > 7*24*time.Hour {
			continue
		}
		wait := every
		if ns.up.Settled() {
			wait = 4 * every
		}
		if now.Sub(ns.up.LastTry) >= wait {
			list = append(list, due{addr, ns.up.LastTry})
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].last.Before(list[j].last) })
	if len(list) > limit {
		list = list[:limit]
	}
	out := make([]string, len(list))
	for i, d := range list {
		out[i] = d.addr
	}
	return out
}
