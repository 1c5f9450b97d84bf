package monitor

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/btcpipe/btcpipe/crawler"
	"github.com/btcpipe/btcpipe/internal/pgtest"
	"github.com/btcpipe/btcpipe/internal/simnet"
	"github.com/btcpipe/btcpipe/peer"
	"github.com/btcpipe/btcpipe/wire"
)

// simCrawl returns a CrawlFunc crawling a small simulated network.
func simCrawl(t *testing.T) CrawlFunc {
	t.Helper()
	s, err := simnet.New(simnet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	g, err := s.Build(simnet.Layout{Count: map[simnet.Kind]int{simnet.Good: 10, simnet.Refused: 2}, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	return func(out crawler.Sink, seeds []string) (*crawler.Crawler, error) {
		c := crawler.Config{Session: peer.DefaultConfig(&wire.Regtest), Seeds: []string{g.Seeds[0].String()},
			Allow: []netip.Prefix{s.Prefix()}, Quiet: 100 * time.Millisecond, ConnectTimeout: 5 * time.Second,
			HandshakeTimeout: 5 * time.Second, GetAddrTimeout: 5 * time.Second, Out: out}
		if seeds != nil {
			c.Seeds, c.MaxNodes = seeds, len(seeds)
		}
		return crawler.New(c)
	}
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDatabaseLostWhileRunning kills the PostgreSQL server under a running
// monitor: the snapshots crawled meanwhile are held in memory and retried
// with backoff, and stored once the server is back.
func TestDatabaseLostWhileRunning(t *testing.T) {
	srv, err := pgtest.Start()
	if err != nil {
		pgtest.Missing(t, err)
	}
	defer srv.Stop()
	dsn, err := srv.NewDB()
	if err != nil {
		t.Fatal(err)
	}
	store, err := Open(context.Background(), dsn, "lost", "regtest")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	m, err := New(Config{Store: store, Crawl: simCrawl(t), Interval: time.Second, Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() { cancel(); <-done }()

	waitFor(t, "the first snapshot", 30*time.Second, func() bool { return m.Progress().LastComplete > 0 })
	first := m.Progress().LastComplete
	srv.Kill()
	waitFor(t, "two snapshots held in memory", 30*time.Second, func() bool { return m.Progress().PendingWrites >= 2 })
	held := m.Progress().PendingWrites
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	// The backoff is at most BackoffMax; here a few seconds.
	waitFor(t, "the held snapshots to be stored", 60*time.Second, func() bool {
		p := m.Progress()
		return p.PendingWrites == 0 && p.LastComplete > first
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	done <- nil
	l, err := store.Snapshots(context.Background(), 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	complete := 0
	for _, s := range l.Snapshots {
		if s.Status == StatusComplete {
			complete++
			if s.Records != 12 {
				t.Errorf("snapshot %d has %d records, want 12", s.ID, s.Records)
			}
		}
	}
	if complete < 1+held {
		t.Errorf("%d complete snapshots, want at least %d (1 before the loss + %d held)", complete, 1+held, held)
	}
	t.Logf("held %d snapshots while the database was down; %d complete in all", held, complete)
}

// testLog logs to t.
func testLog(t *testing.T) *logrus.Entry {
	l := logrus.New()
	l.SetOutput(tWriter{t})
	l.SetLevel(logrus.WarnLevel)
	return logrus.NewEntry(l)
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
