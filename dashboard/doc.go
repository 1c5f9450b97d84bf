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
// and links, paginated on the server (a page of 50 rows of a 20,000-node
// snapshot is sorted in memory, see BenchmarkNodeList). The script only
// updates the progress panel of the overview (polling, no reload).
//
// Every peer-controlled string (user agents, addresses) goes through
// html/template, which escapes it for its context.
package dashboard
