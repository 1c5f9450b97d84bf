package monitor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/btcpipe/btcpipe/crawler"
	"github.com/btcpipe/btcpipe/internal/pgtest"
)

func TestMain(m *testing.M) {
	if os.Getenv("BTCPIPE_MONITOR_HELPER") != "" {
		os.Exit(helperMain())
	}
	code := m.Run()
	stopScale()
	pgtest.StopShared()
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener")); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// backend is a database a test runs against.
type backend struct {
	name string
	dsn  func(t *testing.T) string
}

var backends = []backend{
	{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "btcpipe.db") }},
	{"postgres", func(t *testing.T) string { return pgtest.DB(t) }},
}

// forEach runs f against every backend.
func forEach(t *testing.T, f func(t *testing.T, dsn string)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { f(t, b.dsn(t)) })
	}
}

func open(t *testing.T, dsn string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn, "test", "regtest")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func reachable(addr, ua string, height int32, at time.Time) Observation {
	return Observation{Addr: addr, Network: "ipv4", Outcome: crawler.Reachable, Time: at, ConnectMs: 1.5, Version: true,
		Protocol: 70016, Services: 1033, UserAgent: ua, StartHeight: height, Relay: true, HandshakeMs: 3, AddrsReturned: 10, Transport: "v1"}
}

func failed(addr string, at time.Time) Observation {
	return Observation{Addr: addr, Network: "ipv4", Outcome: crawler.Refused, Error: "connection refused", Time: at, Transport: "v1"}
}

func write(t *testing.T, s *Store, at time.Time, obs ...Observation) int64 {
	t.Helper()
	id, err := s.BeginSnapshot(context.Background(), at)
	if err != nil {
		t.Fatal(err)
	}
	snap := &Snapshot{ID: id, Network: "regtest", Started: at, Finished: at.Add(time.Minute), Obs: obs}
	snap.Summary.Discovered, snap.Summary.Tried = len(obs), len(obs)
	if err := s.WriteSnapshot(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	return id
}

func countRuns(t *testing.T, s *Store) int {
	t.Helper()
	var n int
	if err := s.DB().QueryRow(`SELECT COUNT(*) FROM runs`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSnapshotsRunsAndHistory(t *testing.T) {
	forEach(t, func(t *testing.T, dsn string) {
		s := open(t, dsn)
		ctx := context.Background()
		const a, b, c = "127.0.0.1:18444", "127.0.0.2:18444", "127.0.0.3:18444"
		var ids []int64
		for i := range 3 {
			at := t0.Add(time.Duration(i) * 10 * time.Minute)
			ua := "/Satoshi:27.0.0/"
			if i == 2 {
				ua = "/Satoshi:28.0.0/"
			}
			obs := []Observation{reachable(a, "/Satoshi:27.0.0/", 100+int32(i), at), reachable(b, ua, 100, at)}
			if i == 1 {
				obs = append(obs, failed(c, at))
			} else {
				obs = append(obs, reachable(c, "/btcd:0.24.2/", 100, at))
			}
			ids = append(ids, write(t, s, at, obs...))
		}
		// a: one run; b: two (the user agent changed); c: three.
		if got, want := countRuns(t, s), 1+2+3; got != want {
			t.Errorf("runs = %d, want %d", got, want)
		}
		for i, id := range ids {
			p, err := s.SnapshotNodes(ctx, id, NodeQuery{Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			if p.Total != 3 || len(p.Nodes) != 3 || p.Snapshot.Status != StatusComplete {
				t.Errorf("snapshot %d: total %d, %d nodes, status %s; want 3, 3, complete", id, p.Total, len(p.Nodes), p.Snapshot.Status)
			}
			wantC := "reachable"
			if i == 1 {
				wantC = "refused"
			}
			if got := p.Nodes[2].Outcome; p.Nodes[2].Addr != c || got != wantC {
				t.Errorf("snapshot %d: %s is %s, want %s", id, p.Nodes[2].Addr, got, wantC)
			}
		}
		// Heights change within a run: the latest snapshot shows the last.
		p, _ := s.SnapshotNodes(ctx, ids[2], NodeQuery{Limit: 10, Q: "127.0.0.1:"})
		if len(p.Nodes) != 1 || p.Nodes[0].StartHeight != 102 || p.Nodes[0].ConnectMs != 1.5 {
			t.Errorf("search for %s: %+v", a, p.Nodes)
		}
		// Search by user agent, any case; sort by user agent descending.
		p, _ = s.SnapshotNodes(ctx, ids[2], NodeQuery{Limit: 10, Q: "satoshi:28"})
		if p.Total != 1 || p.Nodes[0].Addr != b {
			t.Errorf("search by user agent: total %d %+v", p.Total, p.Nodes)
		}
		p, _ = s.SnapshotNodes(ctx, ids[2], NodeQuery{Limit: 1, Offset: 1, Sort: "user_agent", Desc: true})
		if p.Total != 3 || len(p.Nodes) != 1 || p.Nodes[0].UserAgent != "/Satoshi:28.0.0/" { // bytes: /btcd, /Satoshi:28, /Satoshi:27
			t.Errorf("page 2 of 1 by user agent desc: total %d %+v", p.Total, p.Nodes)
		}
		h, err := s.Node(ctx, b, t0.Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(h.Runs) != 2 || len(h.Changes) != 1 || h.Changes[0].Field != "user_agent" || h.Changes[0].To != "/Satoshi:28.0.0/" {
			t.Errorf("history of %s: runs %+v changes %+v", b, h.Runs, h.Changes)
		}
		if h.Tries != 3 || h.Successes != 3 || h.Uptime.H2 <= 0 || h.FirstSeen == nil || !h.FirstSeen.Equal(t0) {
			t.Errorf("scores of %s: %+v", b, h)
		}
		hc, _ := s.Node(ctx, c, t0.Add(-time.Hour))
		if hc.Successes != 2 || hc.Tries != 3 || len(hc.Changes) != 2 || hc.Uptime.H2 >= h.Uptime.H2 {
			t.Errorf("history of %s: %+v", c, hc)
		}
		if _, err := s.Node(ctx, "127.9.9.9:1", t0); err == nil {
			t.Error("an unknown node was found")
		}
		st, err := s.Stats(ctx, StatsQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Points) != 3 || st.Points[1].Counts[DimOutcome]["refused"] != 1 || st.Points[2].Counts[DimUserAgent]["/Satoshi:28.0.0/"] != 1 ||
			st.Points[0].Reachable != 3 || st.Points[1].Reachable != 2 {
			t.Errorf("stats: %+v", st.Points)
		}
		st, _ = s.Stats(ctx, StatsQuery{Dims: []string{DimUserAgent}, Top: 1, Points: 2})
		if len(st.Points) != 2 || st.Points[1].Counts[DimUserAgent][OtherKey] != 2 || len(st.Points[1].Counts) != 1 {
			t.Errorf("stats top 1 over 2 points: %+v", st.Points)
		}
		l, _ := s.Snapshots(ctx, 2, 0)
		if l.Total != 3 || len(l.Snapshots) != 2 || l.Snapshots[0].ID != ids[2] {
			t.Errorf("snapshots: %+v", l)
		}
	})
}

func TestRunsAreCutAndSurviveReopen(t *testing.T) {
	forEach(t, func(t *testing.T, dsn string) {
		s := open(t, dsn)
		s.SetMaxRunSnapshots(2)
		for i := range 3 {
			write(t, s, t0.Add(time.Duration(i)*10*time.Minute), reachable("127.0.0.1:18444", "/x/", 1, t0.Add(time.Duration(i)*10*time.Minute)))
		}
		if got := countRuns(t, s); got != 2 { // 2 + 1
			t.Errorf("runs after 3 snapshots with runs of at most 2 = %d, want 2", got)
		}
		s.Close()
		// A new store (a restarted monitor) extends the open run.
		s = open(t, dsn)
		write(t, s, t0.Add(30*time.Minute), reachable("127.0.0.1:18444", "/x/", 1, t0.Add(30*time.Minute)))
		if got := countRuns(t, s); got != 2 {
			t.Errorf("runs after a restart and a 4th unchanged snapshot = %d, want 2 (the open run extended)", got)
		}
		h, _ := s.Node(context.Background(), "127.0.0.1:18444", t0.Add(-time.Hour))
		if h.Tries != 4 || len(h.Runs) != 2 || h.Runs[1].Snapshots != 2 {
			t.Errorf("after reopen: tries %d, runs %+v", h.Tries, h.Runs)
		}
	})
}

func TestObserveUpdatesScoresNotSnapshots(t *testing.T) {
	forEach(t, func(t *testing.T, dsn string) {
		s := open(t, dsn)
		write(t, s, t0, reachable("127.0.0.1:18444", "/x/", 1, t0))
		before := countRuns(t, s)
		if err := s.Observe(context.Background(), []Observation{failed("127.0.0.1:18444", t0.Add(5*time.Minute)), failed("127.9.9.9:1", t0)}); err != nil {
			t.Fatal(err)
		}
		h, _ := s.Node(context.Background(), "127.0.0.1:18444", t0.Add(-time.Hour))
		if h.Tries != 2 || h.Successes != 1 || h.Outcome != "refused" || h.UserAgent != "/x/" {
			t.Errorf("after a failed re-check: %+v", h)
		}
		if countRuns(t, s) != before {
			t.Error("a re-check added a run")
		}
		if _, err := s.Node(context.Background(), "127.9.9.9:1", t0); err == nil {
			t.Error("a re-check of an unknown address created a node")
		}
		due := s.Due(t0.Add(time.Hour), time.Minute, 10)
		if len(due) != 1 || due[0] != "127.0.0.1:18444" {
			t.Errorf("Due = %v, want the one known node", due)
		}
	})
}

func TestInterruptedSnapshotIsMarkedAtRestart(t *testing.T) {
	forEach(t, func(t *testing.T, dsn string) {
		s := open(t, dsn)
		write(t, s, t0, reachable("127.0.0.1:18444", "/x/", 1, t0))
		id, err := s.BeginSnapshot(context.Background(), t0.Add(10*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		s.Close() // the monitor dies during the crawl
		s = open(t, dsn)
		si, err := s.SnapshotByID(context.Background(), id)
		if err != nil || si.Status != StatusInterrupted {
			t.Fatalf("after restart snapshot %d is %q (%v), want interrupted", id, si.Status, err)
		}
		p, _ := s.SnapshotNodes(context.Background(), id, NodeQuery{Limit: 10})
		if len(p.Nodes) != 0 {
			t.Errorf("an interrupted snapshot lists %d nodes", len(p.Nodes))
		}
		// It goes on: the next snapshot extends the run across the gap.
		next := write(t, s, t0.Add(20*time.Minute), reachable("127.0.0.1:18444", "/x/", 1, t0.Add(20*time.Minute)))
		if got := countRuns(t, s); got != 1 {
			t.Errorf("runs = %d, want 1", got)
		}
		if latest, _ := s.LatestID(context.Background()); latest != next {
			t.Errorf("latest = %d, want %d", latest, next)
		}
	})
}

func TestOpenRefusesBadDatabases(t *testing.T) {
	dir := t.TempDir()
	ro := filepath.Join(dir, "ro.db")
	s, err := Open(context.Background(), ro, "test", "regtest")
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	tests := []struct{ name, dsn string }{
		{"missing directory", filepath.Join(dir, "no", "such", "dir", "x.db")},
		{"read-only", "file:" + ro + "?mode=ro"},
		{"unreachable postgres", "postgres://nobody@127.0.0.1:1/x?sslmode=disable&connect_timeout=2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(context.Background(), tt.dsn, "test", "regtest")
			if err == nil {
				s.Close()
				t.Fatalf("Open(%s) succeeded", tt.dsn)
			}
			t.Logf("%v", err)
		})
	}
}

// TestLatestFromMemoryMatchesTheDatabase: the in-memory latest snapshot
// answers every query as the database does.
func TestLatestFromMemoryMatchesTheDatabase(t *testing.T) {
	forEach(t, func(t *testing.T, dsn string) {
		s := open(t, dsn)
		var id int64
		for i := range 3 {
			at := t0.Add(time.Duration(i) * 10 * time.Minute)
			var obs []Observation
			for j := range 30 {
				addr := fmt.Sprintf("127.0.%d.%d:18444", j%3, j)
				switch {
				case j%4 == 0:
					obs = append(obs, failed(addr, at))
				case j%5 == 0 && i == 1:
					obs = append(obs, failed(addr, at))
				default:
					obs = append(obs, reachable(addr, fmt.Sprintf("/Satoshi:%d.0.0/", 20+j%7), int32(j*10), at.Add(time.Duration(j)*time.Second)))
				}
			}
			id = write(t, s, at, obs...)
		}
		if err := s.Observe(context.Background(), []Observation{failed("127.0.1.1:18444", t0.Add(25*time.Minute))}); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		for key := range SortKeys {
			for _, q := range []NodeQuery{
				{Sort: key, Limit: 7, Offset: 3},
				{Sort: key, Desc: true, Limit: 100},
				{Sort: key, Q: "SATOSHI:2", Network: "ipv4", Limit: 5},
				{Sort: key, Outcome: "refused", Limit: -1},
			} {
				var mem, db []string
				nm, err := s.EachNode(ctx, id, q, func(e *NodeEntry) error {
					mem = append(mem, fmt.Sprintf("%s %s %v %v", e.Addr, e.UserAgent, e.Uptime, e.Good))
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				nd, err := s.eachNodeSQL(ctx, id, q, func(e *NodeEntry) error {
					db = append(db, fmt.Sprintf("%s %s %v %v", e.Addr, e.UserAgent, e.Uptime, e.Good))
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if nm != nd || fmt.Sprint(mem) != fmt.Sprint(db) {
					t.Errorf("%+v: memory %d %v\ndatabase %d %v", q, nm, mem, nd, db)
				}
			}
		}
	})
}

// TestObservationKeepsTheTransport: what the crawl record says the
// connection spoke is stored (BIP324 v2 or v1), and nothing for an address
// no connection reached.
func TestObservationKeepsTheTransport(t *testing.T) {
	for _, tc := range []struct {
		rec  crawler.Record
		want string
	}{
		{crawler.Record{Addr: "1.2.3.4:8333", Outcome: crawler.Reachable, Transport: "v2"}, "v2"},
		{crawler.Record{Addr: "1.2.3.5:8333", Outcome: crawler.Reachable, Transport: "v1"}, "v1"},
		{crawler.Record{Addr: "1.2.3.6:8333", Outcome: crawler.NotDialled}, ""},
	} {
		if got := ObservationOf(&tc.rec).Transport; got != tc.want {
			t.Errorf("%s: transport %q, want %q", tc.rec.Addr, got, tc.want)
		}
	}
}
