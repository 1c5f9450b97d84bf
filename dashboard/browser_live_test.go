package dashboard

import (
	"context"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/btcpipe/btcpipe/crawler"
	"github.com/btcpipe/btcpipe/internal/simnet"
	"github.com/btcpipe/btcpipe/monitor"
	"github.com/btcpipe/btcpipe/peer"
	"github.com/btcpipe/btcpipe/wire"
)

// TestBrowserLiveProgressMovesDuringACrawl opens the overview, then starts
// a monitor crawling a simulated network of 60 nodes at 12 dials a second:
// the panel's counters must move while the crawl runs, and the page must
// say when the snapshot is stored, all without a reload.
func TestBrowserLiveProgressMovesDuringACrawl(t *testing.T) {
	tab := browser(t)
	sim, err := simnet.New(simnet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	g, err := sim.Build(simnet.Layout{Count: map[simnet.Kind]int{simnet.Good: 50, simnet.Refused: 6, simnet.CloseAfterVerack: 4}, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	store, err := monitor.Open(context.Background(), filepath.Join(t.TempDir(), "live.db"), "live", "regtest")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	mon, err := monitor.New(monitor.Config{Store: store, Interval: time.Hour, Snapshots: 1,
		Crawl: func(out crawler.Sink, seeds []string) (*crawler.Crawler, error) {
			return crawler.New(crawler.Config{Session: peer.DefaultConfig(&wire.Regtest), Seeds: []string{g.Seeds[0].String()},
				Allow: []netip.Prefix{sim.Prefix()}, Concurrency: 4, DialRate: 12, Quiet: 200 * time.Millisecond,
				ConnectTimeout: 5 * time.Second, HandshakeTimeout: 5 * time.Second, GetAddrTimeout: 5 * time.Second, Out: out})
		}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux(store, New(store, mon.Progress, nil)))
	defer srv.Close()

	load(t, tab, srv.URL+"/")
	if state := eval[string](t, tab, `document.getElementById("progress").dataset.state`); state != "idle" {
		t.Fatalf("before the crawl the panel says %q", state)
	}
	eval[bool](t, tab, `window.__sameDocument = true`)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mon.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("monitor: %v", err)
		}
	}()

	tried := func() int {
		s := eval[string](t, tab, `document.getElementById("p-tried").textContent`)
		n, _ := strconv.Atoi(strings.ReplaceAll(s, ",", ""))
		return n
	}
	// Running, with a first count…
	poll(t, tab, 30*time.Second, "the panel to show the crawl running", `document.getElementById("progress").dataset.state === "running" && Number(document.getElementById("p-tried").textContent) > 0`)
	first := tried()
	state := eval[string](t, tab, `document.getElementById("p-state").textContent`)
	if !strings.HasPrefix(state, "running · snapshot #") {
		t.Errorf("state %q", state)
	}
	// …that grows while it runs.
	poll(t, tab, 30*time.Second, "the tried counter to grow", `Number(document.getElementById("p-tried").textContent.replace(/,/g, "")) > `+strconv.Itoa(first))
	second := tried()
	if second >= 60 {
		t.Logf("note: the crawl was nearly done before the second look (%d tried)", second)
	}
	// The snapshot stored: the panel goes idle and offers the new one.
	poll(t, tab, 60*time.Second, "the panel to announce the stored snapshot", `!document.getElementById("p-newer").hidden && document.getElementById("progress").dataset.state === "idle"`)
	if !eval[bool](t, tab, `window.__sameDocument === true`) {
		t.Error("the page was reloaded")
	}
	final := tried()
	if final < second {
		t.Errorf("tried went %d → %d → %d: the last counts of the crawl are not kept on show", first, second, final)
	}
	t.Logf("tried seen: %d, %d, %d", first, second, final)
	// The link shows the stored snapshot.
	andWait(t, tab, "following the link to the new snapshot", chromedp.Click(`#p-newer a`))
	id, err := store.LatestID(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	info, err := store.SnapshotByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if got := eval[string](t, tab, `document.querySelector("#tile-reachable .value").textContent`); got != strconv.Itoa(info.Reachable) || info.Reachable != 50 {
		t.Errorf("after the crawl the overview shows %s reachable; the snapshot has %d, want the 50 good ones", got, info.Reachable)
	}
}

// poll waits until the JavaScript expression is true in tab.
func poll(t *testing.T, tab context.Context, d time.Duration, what, js string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, d)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}
