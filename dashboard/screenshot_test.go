package dashboard

import (
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/btcpipe/btcpipe/monitor"
)

// TestScreenshots writes a PNG of each page to $BTCPIPE_SCREENSHOTS (make
// dashboard-screenshots), from a generated week of hourly snapshots of
// 1,500 nodes and a crawl shown in flight. It does nothing without the
// variable.
func TestScreenshots(t *testing.T) {
	dir := os.Getenv("BTCPIPE_SCREENSHOTS")
	if dir == "" {
		t.Skip("BTCPIPE_SCREENSHOTS is not set (make dashboard-screenshots sets it)")
	}
	tab := browser(t)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	g := generate(t, 1500, 7*24, time.Hour)
	started := time.Now().Add(-94 * time.Second)
	next := started.Add(10 * time.Minute)
	latest := g.ids[len(g.ids)-1]
	d := New(g.store, func() monitor.Progress {
		return monitor.Progress{APIVersion: monitor.APIVersion, Vantage: g.store.Vantage(), Running: true, Snapshot: latest + 1,
			Started: &started, Discovered: 1412, Queued: 371, Tried: 1041, Reachable: 688, Failed: 302, NotDialled: 214,
			InFlight: 51, Done: 990, NextCrawl: &next, LastComplete: latest}
	}, nil)
	srv := httptest.NewServer(mux(g.store, d))
	defer srv.Close()
	for _, s := range []struct{ name, path string }{
		{"overview", "/"},
		{"nodes", "/nodes?outcome=reachable&sort=uptime&order=desc"},
		{"nodes-search", "/nodes?q=knots"},
		{"node", nodeURL(g.upgraded) + "?range=7d"},
		{"node-xss", nodeURL(g.xss) + "?range=24h"},
		{"node-flaky", nodeURL(g.flaky) + "?range=7d"},
		{"snapshots", "/snapshots"},
		{"snapshot", fmt.Sprintf("/snapshots/%d", g.ids[len(g.ids)-3])},
	} {
		if err := chromedp.Do(tab, chromedp.EmulateViewport(1200, 900), chromedp.Navigate(srv.URL+s.path), chromedp.WaitVisible("footer")); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		out := filepath.Join(dir, "dashboard-"+s.name+".png")
		if err := os.WriteFile(out, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d KB)", out, len(png)/1024)
		// The first screen alone, for the README.
		top, err := chromedp.Run(tab, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, "dashboard-"+s.name+"-top.png"), top, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
