package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/btcpipe/btcpipe/internal/simnet"
	"github.com/btcpipe/btcpipe/monitor"
)

func TestMonitorConfigValidate(t *testing.T) {
	defaults := func(*testing.T) MonitorConfig { return defaultMonitorConfig() }
	tests := []struct {
		name    string
		change  func(*MonitorConfig)
		wantErr string
	}{
		{name: "defaults", change: func(*MonitorConfig) {}},
		{name: "postgres", change: func(c *MonitorConfig) { c.DB = "postgres://u:p@127.0.0.1/db" }},
		{name: "empty db", change: func(c *MonitorConfig) { c.DB = "" }, wantErr: "BTCPIPE_DB"},
		{name: "bad http addr", change: func(c *MonitorConfig) { c.HTTPAddr = "8080" }, wantErr: "BTCPIPE_HTTP_ADDR"},
		{name: "http off", change: func(c *MonitorConfig) { c.HTTPAddr = "" }},
		{name: "short interval", change: func(c *MonitorConfig) { c.Interval = time.Millisecond }, wantErr: "BTCPIPE_MONITOR_INTERVAL"},
		{name: "negative recheck", change: func(c *MonitorConfig) { c.Recheck = -1 }, wantErr: "BTCPIPE_MONITOR_RECHECK"},
		{name: "no rechecks", change: func(c *MonitorConfig) { c.Recheck = 0 }},
		{name: "zero max run", change: func(c *MonitorConfig) { c.MaxRun = 0 }, wantErr: "BTCPIPE_MONITOR_MAX_RUN"},
		{name: "negative snapshots", change: func(c *MonitorConfig) { c.Snapshots = -1 }, wantErr: "BTCPIPE_MONITOR_SNAPSHOTS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := defaults(t)
			tt.change(&c)
			err := c.validate()
			if (err != nil) != (tt.wantErr != "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("validate() = %v, want an error naming %q", err, tt.wantErr)
			}
		})
	}
	if c := defaults(t); c.Interval != 10*time.Minute || c.DB != "btcpipe.db" || c.HTTPAddr != ":8080" {
		t.Errorf("defaults: %+v", c)
	}
	if got := redactDSN("postgres://u:secret@h/db"); strings.Contains(got, "secret") {
		t.Errorf("redactDSN kept the password: %s", got)
	}
}

// TestMonitorBadDatabase: a database that cannot be opened or written at
// start is one line on stderr and exit status 2.
func TestMonitorBadDatabase(t *testing.T) {
	dir := t.TempDir()
	ro := filepath.Join(dir, "ro.db")
	if s, err := monitor.Open(context.Background(), ro, "x", "regtest"); err != nil {
		t.Fatal(err)
	} else {
		s.Close()
	}
	for _, tt := range []struct{ name, db string }{
		{"missing directory", filepath.Join(dir, "missing", "x.db")},
		{"read-only", "file:" + ro + "?mode=ro"},
		{"unreachable postgres", "postgres://btcpipe:secret@127.0.0.1:1/x?sslmode=disable&connect_timeout=2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("BTCPIPE_NETWORK", "regtest")
			t.Setenv("BTCPIPE_DB", tt.db)
			t.Setenv("BTCPIPE_HTTP_ADDR", "")
			var stdout, stderr bytes.Buffer
			code := run([]string{"monitor"}, &stdout, &stderr)
			lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
			if code != exitUsage || len(lines) != 1 || !strings.Contains(lines[0], "BTCPIPE_DB=") {
				t.Errorf("exit %d, stderr %q; want 2 and one line naming BTCPIPE_DB", code, stderr.String())
			}
			if strings.Contains(stderr.String(), "secret") {
				t.Errorf("the password is in the message: %s", stderr.String())
			}
		})
	}
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("GET %s: %v: %s", url, err, b)
		}
	}
	return resp.StatusCode
}

func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s = %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

// startMonitor runs `btcpipe monitor`'s code path with the environment env
// and returns its API's base URL and a function that stops it and returns
// its exit status.
func startMonitor(t *testing.T, vars map[string]string) (string, func() int) {
	t.Helper()
	for k, v := range vars {
		t.Setenv(k, v)
	}
	s := defaultMonitorSettings()
	if err := load(&s); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	e := &env{log: newLogger(s.Config, &syncWriter{w: &logs}), stdout: io.Discard, stderr: io.Discard}
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan net.Addr, 1)
	done := make(chan int, 1)
	go func() { done <- runMonitorWith(ctx, e, &s, nil, func(a net.Addr) { addr <- a }) }()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a.String()
	case code := <-done:
		cancel()
		t.Fatalf("monitor exited %d before listening", code)
	}
	return base, func() int {
		cancel()
		select {
		case code := <-done:
			return code
		case <-time.After(30 * time.Second):
			t.Fatal("monitor did not stop within 30s of its context ending")
			return -1
		}
	}
}

// syncWriter serialises writes (the logger is shared by goroutines).
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

func monitorSim(t *testing.T) (*simnet.Net, *simnet.Graph) {
	t.Helper()
	s, err := simnet.New(simnet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	g, err := s.Build(simnet.Layout{Count: map[simnet.Kind]int{simnet.Good: 20, simnet.Refused: 3, simnet.CloseAfterVerack: 2}, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	return s, g
}

// TestMonitorAgainstSimulatedNetwork runs btcpipe monitor for several
// snapshots of a simulated network with a short interval, then checks the
// API, the exports and the metrics; restarts it on the same database and
// checks that it goes on.
func TestMonitorAgainstSimulatedNetwork(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	s, g := monitorSim(t)
	db := filepath.Join(t.TempDir(), "btcpipe.db")
	env := map[string]string{
		"BTCPIPE_NETWORK": "regtest", "BTCPIPE_LOG_LEVEL": "warn",
		"BTCPIPE_SEEDS": g.Seeds[0].String(), "BTCPIPE_CRAWL_ALLOW": s.Prefix().String(),
		"BTCPIPE_CRAWL_CONNECT_TIMEOUT": "5s", "BTCPIPE_CRAWL_HANDSHAKE_TIMEOUT": "5s", "BTCPIPE_CRAWL_GETADDR_TIMEOUT": "5s",
		"BTCPIPE_CRAWL_QUIET": "100ms", "BTCPIPE_CRAWL_DIAL_RATE": "0",
		"BTCPIPE_DB": db, "BTCPIPE_HTTP_ADDR": "127.0.0.1:0", "BTCPIPE_MONITOR_VANTAGE": "test",
		"BTCPIPE_MONITOR_INTERVAL": "2s", "BTCPIPE_MONITOR_RECHECK": "300ms", "BTCPIPE_MONITOR_SNAPSHOTS": "0",
	}
	base, stop := startMonitor(t, env)
	const want = 3
	deadline := time.Now().Add(90 * time.Second)
	var list monitor.SnapshotList
	for {
		getJSON(t, base+"/api/v1/snapshots", &list)
		complete := 0
		for _, sn := range list.Snapshots {
			if sn.Status == monitor.StatusComplete {
				complete++
			}
		}
		if complete >= want {
			break
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("only %d complete snapshots after 90s: %+v", complete, list.Snapshots)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var page monitor.SnapshotPage
	if code := getJSON(t, base+"/api/v1/snapshots/latest?limit=1000&outcome=reachable", &page); code != 200 {
		t.Fatalf("latest: %d", code)
	}
	if page.Total != 20 || len(page.Nodes) != 20 {
		t.Errorf("latest snapshot: %d reachable nodes (%d on the page), want the 20 good ones", page.Total, len(page.Nodes))
	}
	var all monitor.SnapshotPage
	getJSON(t, base+"/api/v1/snapshots/latest?limit=1000", &all)
	if all.Total != 25 || all.Snapshot.Records != 25 {
		t.Errorf("latest snapshot: %d nodes, %d records, want 25 (20 good, 3 refused, 2 closing after verack)", all.Total, all.Snapshot.Records)
	}
	node := page.Nodes[0]
	var h monitor.NodeHistory
	if code := getJSON(t, base+"/api/v1/nodes/"+node.Addr, &h); code != 200 {
		t.Fatalf("node %s: %d", node.Addr, code)
	}
	if h.Successes < want || len(h.Runs) != 1 || h.Runs[0].Snapshots < want || h.Uptime.H2 <= 0 || h.UserAgent == "" {
		t.Errorf("history of %s: successes %d, runs %+v, uptime %+v", node.Addr, h.Successes, h.Runs, h.Uptime)
	}
	// Re-checks between crawls: more observations than snapshots.
	rechecked := false
	for _, n := range page.Nodes {
		var nh monitor.NodeHistory
		getJSON(t, base+"/api/v1/nodes/"+n.Addr, &nh)
		rechecked = rechecked || nh.Tries > nh.Runs[0].Snapshots+1
	}
	if !rechecked {
		t.Error("no node was observed more often than the snapshots: the re-checks did not happen")
	}
	var st monitor.Stats
	getJSON(t, base+"/api/v1/stats?dims=outcome,network", &st)
	if len(st.Points) < want || st.Points[0].Counts["network"]["ipv4"] != 20 || st.Points[0].Counts["outcome"]["refused"] != 3 {
		t.Errorf("stats: %+v", st.Points)
	}
	var p monitor.Progress
	getJSON(t, base+"/api/v1/progress", &p)
	if p.LastComplete == 0 || p.Vantage != "test" || p.NextCrawl == nil {
		t.Errorf("progress: %+v", p)
	}
	csvBody := getBody(t, base+"/api/v1/snapshots/latest/export?format=csv")
	if n := strings.Count(csvBody, "\n"); n != 26 {
		t.Errorf("csv export: %d lines, want 26", n)
	}
	jl := getBody(t, base+"/api/v1/snapshots/latest/export?format=jsonl&outcome=reachable")
	if n := strings.Count(jl, "\n"); n != 20 {
		t.Errorf("jsonl export: %d lines, want 20", n)
	}
	seeds := getBody(t, base+"/api/v1/snapshots/latest/export?format=seeds")
	if n := strings.Count(seeds, "\n"); n != 21 || !strings.HasPrefix(seeds, monitor.SeedsHeader) {
		t.Errorf("seeds export: %d lines:\n%s", n, seeds)
	}
	metricsText := getBody(t, base+"/metrics")
	for _, m := range []string{"btcpipe_monitor_snapshot_duration_seconds_count", "btcpipe_monitor_db_write_seconds_bucket",
		`btcpipe_monitor_snapshot_nodes{network="ipv4",outcome="reachable"} 20`, `btcpipe_monitor_snapshots_total{status="complete"}`,
		`btcpipe_monitor_rechecks_total{outcome="reachable"}`, "btcpipe_crawl_"} {
		if !strings.Contains(metricsText, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	if code := getJSON(t, base+"/readyz", nil); code != 200 {
		t.Errorf("/readyz = %d", code)
	}
	if code := stop(); code != exitOK {
		t.Errorf("exit status %d after SIGTERM, want 0", code)
	}
	before := len(list.Snapshots)

	// A restart goes on with the same database, and stops by itself after
	// one more snapshot.
	env["BTCPIPE_MONITOR_SNAPSHOTS"] = "1"
	base, stop = startMonitor(t, env)
	deadline = time.Now().Add(60 * time.Second)
	for {
		var l monitor.SnapshotList
		if getJSONQuiet(base+"/api/v1/snapshots", &l) != nil || time.Now().After(deadline) {
			break // stopped by itself (or too slow: the exit status says)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code := stop(); code != exitOK {
		t.Errorf("second run: exit %d", code)
	}
	s2, err := monitor.Open(context.Background(), db, "test", "regtest")
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	l, _ := s2.Snapshots(context.Background(), 1000, 0)
	var complete, interrupted, runs int
	for _, sn := range l.Snapshots {
		switch sn.Status {
		case monitor.StatusComplete:
			complete++
		case monitor.StatusInterrupted:
			interrupted++
		}
	}
	s2.DB().QueryRow(`SELECT COUNT(*) FROM runs`).Scan(&runs)
	if len(l.Snapshots) <= before || complete < want+1 || complete+interrupted != len(l.Snapshots) {
		t.Errorf("after the restart: %d snapshots (%d complete, %d interrupted), before %d", len(l.Snapshots), complete, interrupted, before)
	}
	if runs > 25*2 { // one run per node (two where a node flapped), not one per snapshot
		t.Errorf("%d runs for 25 nodes over %d snapshots: unchanged state is not run-length stored", runs, complete)
	}
	t.Logf("%d snapshots (%d complete, %d interrupted), %d runs", len(l.Snapshots), complete, interrupted, runs)
	s2.Close()
	s.Close()
	goleak.VerifyNone(t, ignore, goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"))
}

func getJSONQuiet(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%d", resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
