package monitor

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/btcpipe/btcpipe/crawler"
	"github.com/btcpipe/btcpipe/wire"
)

// APIVersion is the version of the JSON API and of every type below whose
// fields it serves (api_version in each answer). Fields are only added
// within a version; TestAPIFieldsArePinned fails when one disappears.
const APIVersion = "1"

// Page limits of the lists.
const (
	DefaultLimit = 100
	MaxLimit     = 50_000
)

// SnapshotInfo describes one snapshot.
type SnapshotInfo struct {
	ID               int64      `json:"id"`
	Vantage          string     `json:"vantage"`
	Network          string     `json:"network"`
	Started          time.Time  `json:"started"`
	Finished         *time.Time `json:"finished"`
	Status           string     `json:"status"`
	Discovered       int        `json:"discovered"`
	Tried            int        `json:"tried"`
	Reachable        int        `json:"reachable"`
	Records          int        `json:"records"`
	CrawlInterrupted bool       `json:"crawl_interrupted"`
}

// SnapshotList is GET /api/v1/snapshots.
type SnapshotList struct {
	APIVersion string         `json:"api_version"`
	Total      int            `json:"total"`
	Limit      int            `json:"limit"`
	Offset     int            `json:"offset"`
	Snapshots  []SnapshotInfo `json:"snapshots"`
}

// UptimePercent is the five uptimes in percent.
type UptimePercent struct {
	H2  float64 `json:"2h"`
	H8  float64 `json:"8h"`
	D1  float64 `json:"1d"`
	D7  float64 `json:"7d"`
	D30 float64 `json:"30d"`
}

func uptimePercent(u *Uptime) UptimePercent {
	p := u.Percent()
	r := func(v float64) float64 { return float64(int64(v*100+0.5)) / 100 }
	return UptimePercent{r(p[0]), r(p[1]), r(p[2]), r(p[3]), r(p[4])}
}

// NodeEntry is one node of a snapshot.
type NodeEntry struct {
	Addr          string        `json:"addr"`
	Network       string        `json:"network"`
	Outcome       string        `json:"outcome"`
	Protocol      int32         `json:"protocol"`
	UserAgent     string        `json:"user_agent"`
	Services      uint64        `json:"services"`
	ServiceNames  []string      `json:"service_names"`
	Relay         bool          `json:"relay"`
	Transport     string        `json:"transport"`
	StartHeight   int32         `json:"start_height"`
	ConnectMs     float64       `json:"connect_ms"`
	HandshakeMs   float64       `json:"handshake_ms"`
	AddrsReturned int           `json:"addrs_returned"`
	FirstSeen     *time.Time    `json:"first_seen"`
	LastSeen      *time.Time    `json:"last_seen"`
	Uptime        UptimePercent `json:"uptime"`
	Good          bool          `json:"good"`

	up Uptime // for the seeder dump
}

// SnapshotPage is GET /api/v1/snapshots/{id}.
type SnapshotPage struct {
	APIVersion string       `json:"api_version"`
	Snapshot   SnapshotInfo `json:"snapshot"`
	Total      int          `json:"total"`
	Limit      int          `json:"limit"`
	Offset     int          `json:"offset"`
	Sort       string       `json:"sort"`
	Order      string       `json:"order"`
	Query      string       `json:"q"`
	Nodes      []NodeEntry  `json:"nodes"`
}

// Run is a stretch of snapshots in which a node's state did not change.
type Run struct {
	FirstSnapshot int64     `json:"first_snapshot"`
	LastSnapshot  int64     `json:"last_snapshot"`
	From          time.Time `json:"from"`
	To            time.Time `json:"to"`
	Snapshots     int       `json:"snapshots"`
	Outcome       string    `json:"outcome"`
	Protocol      int32     `json:"protocol"`
	UserAgent     string    `json:"user_agent"`
	Services      uint64    `json:"services"`
	Relay         bool      `json:"relay"`
	Transport     string    `json:"transport"`
	FirstHeight   int32     `json:"first_height"`
	LastHeight    int32     `json:"last_height"`
	ConnectMs     float64   `json:"connect_ms"`     // mean over the run
	HandshakeMs   float64   `json:"handshake_ms"`   // mean over the run
	AddrsReturned float64   `json:"addrs_returned"` // mean over the run
}

// Change is one change of a node's state between two runs.
type Change struct {
	Time     time.Time `json:"time"`
	Snapshot int64     `json:"snapshot"`
	Field    string    `json:"field"`
	From     string    `json:"from"`
	To       string    `json:"to"`
}

// NodeHistory is GET /api/v1/nodes/{addr}.
type NodeHistory struct {
	APIVersion  string        `json:"api_version"`
	Addr        string        `json:"addr"`
	Network     string        `json:"network"`
	Vantage     string        `json:"vantage"`
	FirstSeen   *time.Time    `json:"first_seen"`
	LastSeen    *time.Time    `json:"last_seen"`
	LastTry     *time.Time    `json:"last_try"`
	Tries       int           `json:"tries"`
	Successes   int           `json:"successes"`
	Uptime      UptimePercent `json:"uptime"`
	Good        bool          `json:"good"`
	Outcome     string        `json:"outcome"`
	Error       string        `json:"error"`
	Protocol    int32         `json:"protocol"`
	UserAgent   string        `json:"user_agent"`
	Services    uint64        `json:"services"`
	StartHeight int32         `json:"start_height"`
	ConnectMs   float64       `json:"connect_ms"`
	Since       time.Time     `json:"since"`
	Runs        []Run         `json:"runs"`
	Changes     []Change      `json:"changes"`
}

// StatsPoint is the counts of one snapshot.
type StatsPoint struct {
	Snapshot  int64                     `json:"snapshot"`
	Time      time.Time                 `json:"time"`
	Reachable int                       `json:"reachable"`
	Records   int                       `json:"records"`
	Counts    map[string]map[string]int `json:"counts"`
}

// Stats is GET /api/v1/stats.
type Stats struct {
	APIVersion string       `json:"api_version"`
	Vantage    string       `json:"vantage"`
	Dims       []string     `json:"dims"`
	Top        int          `json:"top"`
	Points     []StatsPoint `json:"points"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

const snapshotCols = `id, vantage, network, started, finished, status, discovered, tried, reachable, records, crawl_interrupted`

func scanSnapshot(sc interface{ Scan(...any) error }) (SnapshotInfo, error) {
	var si SnapshotInfo
	var started, finished int64
	var ci int
	err := sc.Scan(&si.ID, &si.Vantage, &si.Network, &started, &finished, &si.Status, &si.Discovered, &si.Tried, &si.Reachable, &si.Records, &ci)
	si.Started, si.Finished, si.CrawlInterrupted = fromMs(started), timePtr(fromMs(finished)), ci != 0
	return si, err
}

// Snapshots lists the vantage's snapshots, newest first.
func (s *Store) Snapshots(ctx context.Context, limit, offset int) (SnapshotList, error) {
	l := SnapshotList{APIVersion: APIVersion, Limit: limit, Offset: offset, Snapshots: []SnapshotInfo{}}
	if err := s.queryRow(ctx, `SELECT COUNT(*) FROM snapshots WHERE vantage = ?`, s.vantage).Scan(&l.Total); err != nil {
		return l, fmt.Errorf("monitor: listing snapshots: %w", err)
	}
	rows, err := s.query(ctx, `SELECT `+snapshotCols+` FROM snapshots WHERE vantage = ? ORDER BY id DESC LIMIT ? OFFSET ?`, s.vantage, limit, offset)
	if err != nil {
		return l, fmt.Errorf("monitor: listing snapshots: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		si, err := scanSnapshot(rows)
		if err != nil {
			return l, fmt.Errorf("monitor: listing snapshots: %w", err)
		}
		l.Snapshots = append(l.Snapshots, si)
	}
	return l, rows.Err()
}

// SnapshotByID returns snapshot id of the vantage.
func (s *Store) SnapshotByID(ctx context.Context, id int64) (SnapshotInfo, error) {
	si, err := scanSnapshot(s.queryRow(ctx, `SELECT `+snapshotCols+` FROM snapshots WHERE id = ? AND vantage = ?`, id, s.vantage))
	if errors.Is(err, sql.ErrNoRows) {
		return si, fmt.Errorf("snapshot %d: %w", id, ErrNotFound)
	}
	return si, err
}

// LatestID returns the id of the vantage's newest complete snapshot.
func (s *Store) LatestID(ctx context.Context) (int64, error) {
	var id int64
	if err := s.queryRow(ctx, `SELECT COALESCE(MAX(id), 0) FROM snapshots WHERE vantage = ? AND status = ?`, s.vantage, StatusComplete).Scan(&id); err != nil {
		return 0, err
	}
	if id == 0 {
		return 0, fmt.Errorf("no complete snapshot yet: %w", ErrNotFound)
	}
	return id, nil
}

// NodeQuery selects, sorts and pages the nodes of a snapshot.
type NodeQuery struct {
	// Q matches a substring of the address or the user agent (any case).
	Q string
	// Network and Outcome, if set, must match exactly.
	Network, Outcome string
	// Sort is one of SortKeys (default "addr"); Desc reverses it.
	Sort string
	Desc bool
	// Limit < 0: every node.
	Limit, Offset int
}

// SortKeys are the columns the nodes of a snapshot can be sorted by.
var SortKeys = map[string]string{
	"addr": "n.addr", "network": "n.network", "outcome": "r.outcome", "user_agent": "r.user_agent",
	"protocol": "r.protocol", "services": "r.services", "height": "r.last_height", "latency": "r.last_connect_ms",
	"uptime": "st.r4", "uptime_2h": "st.r0", "uptime_8h": "st.r1", "uptime_1d": "st.r2", "uptime_7d": "st.r3", "uptime_30d": "st.r4",
	"first_seen": "st.first_seen", "last_seen": "st.last_seen",
}

func (s *Store) nodeWhere(id int64, q NodeQuery) (string, []any) {
	where := `r.vantage = ? AND r.last_snap >= ? AND r.first_snap <= ?`
	args := []any{s.vantage, id, id}
	if q.Q != "" {
		pat := "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(strings.ToLower(q.Q)) + "%"
		where += ` AND (LOWER(n.addr) LIKE ? ESCAPE '\' OR LOWER(r.user_agent) LIKE ? ESCAPE '\')`
		args = append(args, pat, pat)
	}
	if q.Network != "" {
		where += ` AND n.network = ?`
		args = append(args, q.Network)
	}
	if q.Outcome != "" {
		where += ` AND r.outcome = ?`
		args = append(args, q.Outcome)
	}
	return where, args
}

// EachNode calls fn with every node of snapshot id that q selects, in q's
// order. The entry is reused: fn must not keep it. It returns the total
// that q selects regardless of its page. The newest complete snapshot is
// served from memory.
func (s *Store) EachNode(ctx context.Context, id int64, q NodeQuery, fn func(*NodeEntry) error) (int, error) {
	if _, ok := SortKeys[q.Sort]; q.Sort != "" && !ok {
		return 0, fmt.Errorf("monitor: cannot sort by %q", q.Sort)
	}
	s.mu.Lock()
	isLatest := id == s.prevSnap && id != 0
	s.mu.Unlock()
	if isLatest {
		c, err := s.latestSnapshot(ctx)
		if err != nil {
			return 0, err
		}
		if c.id == id {
			return c.each(q, fn)
		}
	}
	return s.eachNodeSQL(ctx, id, q, fn)
}

// eachNodeSQL is EachNode from the database.
func (s *Store) eachNodeSQL(ctx context.Context, id int64, q NodeQuery, fn func(*NodeEntry) error) (int, error) {
	col, ok := SortKeys[q.Sort]
	if q.Sort == "" {
		col, ok = SortKeys["addr"], true
	}
	if !ok {
		return 0, fmt.Errorf("monitor: cannot sort by %q", q.Sort)
	}
	where, args := s.nodeWhere(id, q)
	from := ` FROM runs r JOIN nodes n ON n.id = r.node_id LEFT JOIN node_stats st ON st.node_id = r.node_id AND st.vantage = r.vantage WHERE `
	countArgs := append([]any(nil), args...)
	order := " ASC"
	if q.Desc {
		order = " DESC"
	}
	sel := `SELECT n.addr, n.network, r.outcome, r.protocol, r.user_agent, r.services, r.relay, r.transport, r.last_snap, r.n,
		r.last_height, r.connect_sum, r.handshake_sum, r.addrs_sum, r.last_connect_ms, r.last_handshake_ms, r.last_addrs,
		COALESCE(st.first_seen, 0), COALESCE(st.last_seen, 0), COALESCE(st.last_try, 0), COALESCE(st.total, 0), COALESCE(st.success, 0),
		COALESCE(st.w0, 0), COALESCE(st.c0, 0), COALESCE(st.r0, 0), COALESCE(st.w1, 0), COALESCE(st.c1, 0), COALESCE(st.r1, 0),
		COALESCE(st.w2, 0), COALESCE(st.c2, 0), COALESCE(st.r2, 0), COALESCE(st.w3, 0), COALESCE(st.c3, 0), COALESCE(st.r3, 0),
		COALESCE(st.w4, 0), COALESCE(st.c4, 0), COALESCE(st.r4, 0)` + from + where + ` ORDER BY ` + col + order + `, n.addr` + order
	if q.Limit >= 0 {
		sel += ` LIMIT ? OFFSET ?`
		args = append(args, q.Limit, q.Offset)
	}
	rows, err := s.query(ctx, sel, args...)
	if err != nil {
		return 0, fmt.Errorf("monitor: reading the nodes of snapshot %d: %w", id, err)
	}
	defer rows.Close()
	var e NodeEntry
	total := 0
	for rows.Next() {
		total++
		var services int64
		var relay, n, addrsLast int
		var lastSnap, first, last, try int64
		var csum, hsum, cLast, hLast float64
		var asum int64
		e = NodeEntry{}
		u := &e.up
		dst := []any{&e.Addr, &e.Network, &e.Outcome, &e.Protocol, &e.UserAgent, &services, &relay, &e.Transport, &lastSnap, &n,
			&e.StartHeight, &csum, &hsum, &asum, &cLast, &hLast, &addrsLast, &first, &last, &try, &u.Total, &u.Success}
		for i := range u.Stats {
			dst = append(dst, &u.Stats[i].Weight, &u.Stats[i].Count, &u.Stats[i].Reliability)
		}
		if err := rows.Scan(dst...); err != nil {
			return total, fmt.Errorf("monitor: reading the nodes of snapshot %d: %w", id, err)
		}
		e.Services, e.Relay = uint64(services), relay != 0
		e.ServiceNames = wire.ServiceFlag(e.Services).Names()
		if e.ServiceNames == nil {
			e.ServiceNames = []string{}
		}
		if lastSnap == id { // the snapshot is the run's last: its own values
			e.ConnectMs, e.HandshakeMs, e.AddrsReturned = cLast, hLast, addrsLast
		} else if n > 0 { // inside a run: the run's means
			e.ConnectMs, e.HandshakeMs, e.AddrsReturned = csum/float64(n), hsum/float64(n), int(asum/int64(n))
		}
		e.FirstSeen, e.LastSeen = timePtr(fromMs(first)), timePtr(fromMs(last))
		u.LastTry, u.LastSuccess = fromMs(try), fromMs(last)
		e.Uptime = uptimePercent(u)
		if np, err := wire.NetworkByName(s.network); err == nil {
			e.Good = e.Outcome == string(crawler.Reachable) && SeedGood(u, portOf(e.Addr), np.DefaultPort, e.Services, e.Protocol)
		}
		if err := fn(&e); err != nil {
			return total, err
		}
	}
	if err := rows.Err(); err != nil {
		return total, fmt.Errorf("monitor: reading the nodes of snapshot %d: %w", id, err)
	}
	rows.Close()
	// The page holds everything from the first node on: it is the total.
	// Otherwise count.
	if q.Limit < 0 || (q.Offset == 0 && total < q.Limit) {
		return total, nil
	}
	if err := s.queryRow(ctx, `SELECT COUNT(*)`+from+where, countArgs...).Scan(&total); err != nil {
		return 0, fmt.Errorf("monitor: counting the nodes of snapshot %d: %w", id, err)
	}
	return total, nil
}

// SnapshotNodes returns one page of the nodes of snapshot id.
func (s *Store) SnapshotNodes(ctx context.Context, id int64, q NodeQuery) (SnapshotPage, error) {
	p := SnapshotPage{APIVersion: APIVersion, Limit: q.Limit, Offset: q.Offset, Sort: q.Sort, Query: q.Q, Nodes: []NodeEntry{}, Order: "asc"}
	if p.Sort == "" {
		p.Sort = "addr"
	}
	if q.Desc {
		p.Order = "desc"
	}
	si, err := s.SnapshotByID(ctx, id)
	if err != nil {
		return p, err
	}
	p.Snapshot = si
	if si.Status != StatusComplete {
		return p, nil
	}
	p.Total, err = s.EachNode(ctx, id, q, func(e *NodeEntry) error {
		p.Nodes = append(p.Nodes, *e)
		return nil
	})
	return p, err
}

// Node returns one node's history since since: its runs, what changed
// between them, and its scores.
func (s *Store) Node(ctx context.Context, addr string, since time.Time) (NodeHistory, error) {
	h := NodeHistory{APIVersion: APIVersion, Addr: addr, Vantage: s.vantage, Since: since.UTC(), Runs: []Run{}, Changes: []Change{}}
	var nodeID int64
	err := s.queryRow(ctx, `SELECT id, network FROM nodes WHERE addr = ?`, addr).Scan(&nodeID, &h.Network)
	if errors.Is(err, sql.ErrNoRows) {
		return h, fmt.Errorf("node %s: %w", addr, ErrNotFound)
	}
	if err != nil {
		return h, fmt.Errorf("monitor: node %s: %w", addr, err)
	}
	var u Uptime
	var first, last, try int64
	var services int64
	dst := []any{&first, &last, &try, &u.Total, &u.Success}
	for i := range u.Stats {
		dst = append(dst, &u.Stats[i].Weight, &u.Stats[i].Count, &u.Stats[i].Reliability)
	}
	dst = append(dst, &h.Outcome, &h.Error, &h.Protocol, &h.UserAgent, &services, &h.StartHeight, &h.ConnectMs)
	err = s.queryRow(ctx, `SELECT first_seen, last_seen, last_try, total, success, w0, c0, r0, w1, c1, r1, w2, c2, r2, w3, c3, r3, w4, c4, r4,
		outcome, error, protocol, user_agent, services, start_height, connect_ms FROM node_stats WHERE node_id = ? AND vantage = ?`, nodeID, s.vantage).Scan(dst...)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return h, fmt.Errorf("monitor: node %s: %w", addr, err)
	}
	h.Services = uint64(services)
	h.FirstSeen, h.LastSeen, h.LastTry, h.Tries, h.Successes = timePtr(fromMs(first)), timePtr(fromMs(last)), timePtr(fromMs(try)), u.Total, u.Success
	u.LastTry, u.LastSuccess = fromMs(try), fromMs(last)
	h.Uptime = uptimePercent(&u)
	if np, err := wire.NetworkByName(s.network); err == nil {
		h.Good = h.Outcome == string(crawler.Reachable) && SeedGood(&u, portOf(addr), np.DefaultPort, h.Services, h.Protocol)
	}
	rows, err := s.query(ctx, `SELECT first_snap, last_snap, first_time, last_time, n, outcome, protocol, user_agent, services, relay, transport,
		first_height, last_height, connect_sum, handshake_sum, addrs_sum FROM runs
		WHERE node_id = ? AND vantage = ? AND last_time >= ? ORDER BY first_snap`, nodeID, s.vantage, ms(since))
	if err != nil {
		return h, fmt.Errorf("monitor: node %s history: %w", addr, err)
	}
	defer rows.Close()
	for rows.Next() {
		var r Run
		var from, to, asum int64
		var relay int
		var csum, hsum float64
		var sv int64
		if err := rows.Scan(&r.FirstSnapshot, &r.LastSnapshot, &from, &to, &r.Snapshots, &r.Outcome, &r.Protocol, &r.UserAgent, &sv, &relay,
			&r.Transport, &r.FirstHeight, &r.LastHeight, &csum, &hsum, &asum); err != nil {
			return h, fmt.Errorf("monitor: node %s history: %w", addr, err)
		}
		r.From, r.To, r.Services, r.Relay = fromMs(from), fromMs(to), uint64(sv), relay != 0
		if r.Snapshots > 0 {
			n := float64(r.Snapshots)
			r.ConnectMs, r.HandshakeMs, r.AddrsReturned = round3(csum/n), round3(hsum/n), round3(float64(asum)/n)
		}
		if k := len(h.Runs); k > 0 {
			h.Changes = append(h.Changes, changes(&h.Runs[k-1], &r)...)
		}
		h.Runs = append(h.Runs, r)
	}
	return h, rows.Err()
}

func round3(v float64) float64 { return float64(int64(v*1000+0.5)) / 1000 }

// changes lists what differs between two consecutive runs.
func changes(a, b *Run) []Change {
	var out []Change
	add := func(field, from, to string) {
		if from != to {
			out = append(out, Change{Time: b.From, Snapshot: b.FirstSnapshot, Field: field, From: from, To: to})
		}
	}
	add("outcome", a.Outcome, b.Outcome)
	if b.Protocol != 0 && a.Protocol != 0 { // a failure has no version to compare
		add("protocol", fmt.Sprint(a.Protocol), fmt.Sprint(b.Protocol))
		add("user_agent", a.UserAgent, b.UserAgent)
		add("services", fmt.Sprintf("%016x", a.Services), fmt.Sprintf("%016x", b.Services))
		add("relay", fmt.Sprint(a.Relay), fmt.Sprint(b.Relay))
		add("transport", a.Transport, b.Transport)
	}
	return out
}

// StatsQuery selects GET /api/v1/stats.
type StatsQuery struct {
	From, To time.Time // zero: unbounded
	Dims     []string  // default: all of Dims
	Top      int       // keep the Top keys of each dimension (by their sum), the rest as "(other)"; 0: all
	Points   int       // at most this many snapshots, evenly spread (default 500)
}

// OtherKey is the key of the counts that StatsQuery.Top folded together.
const OtherKey = "(other)"

// Stats returns the counts of the vantage's complete snapshots over time.
func (s *Store) Stats(ctx context.Context, q StatsQuery) (Stats, error) {
	if len(q.Dims) == 0 {
		q.Dims = Dims
	}
	if q.Points <= 0 {
		q.Points = 500
	}
	st := Stats{APIVersion: APIVersion, Vantage: s.vantage, Dims: q.Dims, Top: q.Top, Points: []StatsPoint{}}
	to := q.To
	if to.IsZero() {
		to = time.Unix(1<<40, 0)
	}
	rows, err := s.query(ctx, `SELECT id, started, reachable, records FROM snapshots WHERE vantage = ? AND status = ? AND started >= ? AND started <= ? ORDER BY id`,
		s.vantage, StatusComplete, ms(q.From), to.UnixMilli())
	if err != nil {
		return st, fmt.Errorf("monitor: stats: %w", err)
	}
	var all []StatsPoint
	for rows.Next() {
		var p StatsPoint
		var started int64
		if err := rows.Scan(&p.Snapshot, &started, &p.Reachable, &p.Records); err != nil {
			rows.Close()
			return st, fmt.Errorf("monitor: stats: %w", err)
		}
		p.Time = fromMs(started)
		all = append(all, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("monitor: stats: %w", err)
	}
	if len(all) > q.Points { // evenly spread, the newest always in
		step := float64(len(all)-1) / float64(q.Points-1)
		picked := make([]StatsPoint, 0, q.Points)
		for i := range q.Points {
			picked = append(picked, all[int(float64(i)*step+0.5)])
		}
		all = picked
	}
	if len(all) == 0 {
		return st, nil
	}
	byID := make(map[int64]*StatsPoint, len(all))
	for i := range all {
		all[i].Counts = map[string]map[string]int{}
		for _, d := range q.Dims {
			all[i].Counts[d] = map[string]int{}
		}
		byID[all[i].Snapshot] = &all[i]
	}
	// The counts, in chunks of snapshot ids.
	for start := 0; start < len(all); start += 200 {
		end := min(start+200, len(all))
		ph := strings.Repeat("?, ", end-start)
		args := make([]any, 0, end-start+len(q.Dims))
		for _, p := range all[start:end] {
			args = append(args, p.Snapshot)
		}
		dph := strings.Repeat("?, ", len(q.Dims))
		for _, d := range q.Dims {
			args = append(args, d)
		}
		rows, err := s.query(ctx, `SELECT snapshot_id, dim, key, n FROM snapshot_counts WHERE snapshot_id IN (`+ph[:len(ph)-2]+`) AND dim IN (`+dph[:len(dph)-2]+`)`, args...)
		if err != nil {
			return st, fmt.Errorf("monitor: stats: %w", err)
		}
		for rows.Next() {
			var id int64
			var dim, key string
			var n int
			if err := rows.Scan(&id, &dim, &key, &n); err != nil {
				rows.Close()
				return st, fmt.Errorf("monitor: stats: %w", err)
			}
			byID[id].Counts[dim][key] = n
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return st, fmt.Errorf("monitor: stats: %w", err)
		}
	}
	if q.Top > 0 {
		for _, d := range q.Dims {
			sums := map[string]int{}
			for _, p := range all {
				for k, n := range p.Counts[d] {
					sums[k] += n
				}
			}
			keys := sortedKeys(sums)
			sort.SliceStable(keys, func(i, j int) bool { return sums[keys[i]] > sums[keys[j]] })
			if len(keys) <= q.Top {
				continue
			}
			drop := map[string]bool{}
			for _, k := range keys[q.Top:] {
				drop[k] = true
			}
			for _, p := range all {
				c := p.Counts[d]
				for k, n := range c {
					if drop[k] {
						c[OtherKey] += n
						delete(c, k)
					}
				}
			}
		}
	}
	st.Points = all
	return st, nil
}
