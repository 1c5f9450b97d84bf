// Package metrics exposes what btcpipe does as Prometheus metrics, and
// serves them over HTTP beside a liveness and a readiness check:
//
//	GET /metrics   the metrics, in the Prometheus text format (or protobuf / OpenMetrics, as negotiated)
//	GET /healthz   200 "ok" while the process runs
//	GET /readyz    200 "ready" once a handshake has completed on the current connection, else 503
//
// A Metrics holds its own prometheus.Registry (never the global one), with
// the Go runtime and process collectors, so that a test can run several.
// Metrics.Observer is a stages.Observer and Metrics.InstrumentNode hooks a
// peer.Node; Metrics.Crawl counts what a crawler does (Crawl.Sink wraps its
// output, Crawl.Watch reads its running counters).
//
// # Names
//
// Every name starts with btcpipe_, counters end in _total, durations are in
// seconds and sizes in bytes. Labels have bounded values only — no peer
// addresses, no user agents:
//
//	btcpipe_frames_total{command,direction}       frames cut from the stream (in, before the checksum check) or written (out)
//	btcpipe_bytes_total{command,direction}        bytes of those frames, header included
//	btcpipe_checksum_failures_total               frames dropped for a bad checksum
//	btcpipe_decode_failures_total{command}        payloads that did not decode
//	btcpipe_unknown_commands_total                messages of a command wire does not know
//	btcpipe_queue_depth{stage}                    messages waiting in each stage's input channel, summed over connections
//	btcpipe_queue_capacity{stage}                 capacity of those channels, summed likewise
//	btcpipe_connect_duration_seconds              TCP connect time of connections that completed a handshake (histogram)
//	btcpipe_handshake_duration_seconds            version sent to handshake complete (histogram)
//	btcpipe_ping_rtt_seconds                      ping to matching pong (histogram)
//	btcpipe_peers_received_total                  addresses received in addr and addrv2
//	btcpipe_peers_unique                          unique addresses in the node's book
//	btcpipe_connections_total                     TCP connections opened
//	btcpipe_transport_handshakes_total{transport} completed handshakes by transport (v1, v2)
//	btcpipe_transport_bytes_total{transport,direction} message bytes as on the wire, by transport
//	btcpipe_disconnects_total                     connections ended
//	btcpipe_reconnects_total                      waits before reconnecting
//	btcpipe_connected                             1 while a connection is open
//	btcpipe_ready                                 1 while a handshake is complete on it
//	btcpipe_crawl_discovered_total                unique addresses a crawl learned
//	btcpipe_crawl_tried_total                     connection attempts it began
//	btcpipe_crawl_reachable_total                 node records with outcome reachable
//	btcpipe_crawl_failures_total{class}           node records with a failure outcome, by outcome
//	btcpipe_crawl_not_dialled_total               node records of addresses not dialled
//	btcpipe_crawl_in_flight                       attempts under way now
//	btcpipe_crawl_queued                          addresses waiting to be dialled
//
// Command labels are the commands of wire.KnownCommands, and "other" for
// any other, so that a peer sending made-up commands cannot grow the label
// set; failure classes are the crawler's outcomes. The per-frame cost is a lookup in a map built at construction (no
// allocation, no label hashing) and two atomic adds.
package metrics
