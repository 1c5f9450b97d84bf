// Package report turns a crawl into one self-contained HTML page: no
// script, no external stylesheet, font or image; every chart is an inline
// SVG drawn by this package's html/template templates, with the numbers it
// shows in data-label / data-value attributes (and in a tooltip), so the
// page can be checked by a program as well as read by a person.
//
// A Report is a crawler.Sink: hand it every record and the summary (beside
// the JSON lines sink) and call WriteHTML at the end; or rebuild one from a
// JSON lines file with Read. Its sections, one chart each:
//
//	outcomes    every record by outcome
//	networks    every record by network type (ipv4, ipv6, torv3, i2p, cjdns), split by outcome
//	agents      reachable nodes by user agent (the most common MaxAgents, then the rest as one bar)
//	protocols   reachable nodes by protocol version
//	services    reachable nodes advertising each service bit
//	heights     reachable nodes by how far their start height is below the highest one seen
//	handshake   nodes that completed the handshake, by handshake latency
//
// # Memory
//
// A Report keeps counts, plus one start height and one latency per
// reachable node (12 bytes each): its size is bounded by the crawl's
// MaxNodes, like the crawl's own summary.
//
// The markup is XHTML-compatible (every element closed, no named entities),
// so encoding/xml can check that it is well formed.
package report
