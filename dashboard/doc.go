// Package dashboard is the monitor's web dashboard: server-rendered HTML
// pages over a monitor.Store, mounted by `btcpipe monitor` at / beside the
// JSON API. It reads the store in-process (the same queries as the API, no
// HTTP round-trip):
//
//	GET /                  overview: reachable nodes now and over time by network and transport,
//	                       protocol versions, user agents, services, start heights, the crawl in flight
//	GET /nodes             the nodes of the newest complete snapshot: search, filter, sort, pages
//	GET /nodes/{addr}      one node's history: reachability, uptime scores, changes, latency
//	GET /snapshots         every snapshot, newest first
//	GET /snapshots/{id}    one snapshot: its counts, its exports (CSV, JSON lines, seeds dump), its nodes
//	GET /live/progress     the crawl in flight as JSON (monitor.Progress), polled by the overview
//	GET /static/...        the stylesheet and the one script, embedded
//
// Everything is embedded in the binary (embed): no asset, font or script
// is fetched from another host, and the pages send a Content-Security-Policy
// that allows only their own origin. Charts are SVG drawn on the server. The
// tables work without JavaScript: search, sort and paging are plain forms
// and links, paginated on the server (50 rows a page; the newest
// snapshot's nodes are searched and sorted in the monitor's memory, see
// BenchmarkPages for a 20,000-node network). The one script only updates
// the overview's panel of the crawl in flight (polling /live/progress
// every second, backing off while the monitor does not answer; no reload).
//
// The tests (dashboard_test.go over HTTP, browser*_test.go in headless
// chromium through chromedp) run against databases that gen_test.go
// generates; TestScreenshots writes a PNG of each page for a person to look
// at (make dashboard-screenshots). grafana_test.go checks the Grafana
// dashboard in deploy/grafana against the registered metrics.
//
// Every peer-controlled string (user agents, addresses) goes through
// html/template, which escapes it for its context.
package dashboard
