package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/btcpipe/btcpipe/monitor"
)

// TestMonitorServesTheDashboard runs btcpipe monitor against the simulated
// network until one snapshot is stored, then reads the dashboard's pages
// beside the API, /metrics and /healthz on the same address.
func TestMonitorServesTheDashboard(t *testing.T) {
	s, g := monitorSim(t)
	base, stop := startMonitor(t, map[string]string{
		"BTCPIPE_NETWORK": "regtest", "BTCPIPE_LOG_LEVEL": "warn",
		"BTCPIPE_SEEDS": g.Seeds[0].String(), "BTCPIPE_CRAWL_ALLOW": s.Prefix().String(),
		"BTCPIPE_CRAWL_QUIET": "100ms", "BTCPIPE_CRAWL_DIAL_RATE": "0",
		"BTCPIPE_DB": filepath.Join(t.TempDir(), "btcpipe.db"), "BTCPIPE_HTTP_ADDR": "127.0.0.1:0", "BTCPIPE_MONITOR_VANTAGE": "dash",
		"BTCPIPE_MONITOR_INTERVAL": "1h", "BTCPIPE_MONITOR_RECHECK": "0",
	})
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var p monitor.Progress
		getJSON(t, base+"/api/v1/progress", &p)
		if p.LastComplete > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no snapshot stored after 60s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	overview := getBody(t, base+"/")
	for _, want := range []string{`<div class="tile" id="tile-reachable"><div class="label">Reachable nodes</div><div class="value num">20</div>`, "vantage <b>dash</b>"} {
		if !strings.Contains(overview, want) {
			t.Errorf("the dashboard at / lacks %s", want)
		}
	}
	if nodes := getBody(t, base+"/nodes?outcome=reachable"); !strings.Contains(nodes, `data-total="20"`) {
		t.Error("/nodes does not list the 20 reachable nodes")
	}
	if css := getBody(t, base+"/static/style.css"); !strings.Contains(css, "--accent") {
		t.Error("/static/style.css is not the dashboard's")
	}
	if m := getBody(t, base+"/metrics"); !strings.Contains(m, "btcpipe_monitor_snapshots_total") {
		t.Error("/metrics is not served beside the dashboard")
	}
	if h := getBody(t, base+"/healthz"); strings.TrimSpace(h) != "ok" {
		t.Errorf("/healthz = %q", h)
	}
	stopped = true
	if code := stop(); code != exitOK {
		t.Errorf("exit %d", code)
	}
}
