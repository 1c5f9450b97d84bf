// Package crawler walks the Bitcoin network: starting from seed addresses
// it connects to every address it learns, through peer.Dialer.Connect as
// btcpipe node does, completes the version handshake, sends
// getaddr, collects the addr/addrv2 replies, records the node, queues every
// newly learned address (each address once), and goes on until nothing new
// is left. `btcpipe crawl` is its command.
//
// # Politeness and safety
//
//   - At most Config.Concurrency connections are open at once (an
//     errgroup with SetLimit), and new connections start at most
//     Config.DialRate per second.
//   - Every connection is bounded: a connect timeout, a handshake timeout,
//     and after the handshake a getaddr timeout. A session ends as soon as
//     Config.Quiet has passed without an addr message after the first one,
//     or the peer has sent Config.MaxAddrsPerNode entries; the crawler then
//     cancels the session's context, which closes the connection.
//   - Only addresses inside the allowlist are dialled, and never a bogon
//     (private, loopback, link-local, documentation, multicast… see Bogons)
//     unless the allowlist names its range explicitly (Allowlist.Check).
//     The default allowlist is every public address for mainnet, the
//     testnets and signet, and loopback only for regtest and simnet. Tor
//     v3, I2P and CJDNS addresses are recorded but never dialled (no proxy
//     support yet). Every connection goes through Config.Dial and every
//     name resolution through Config.Resolve, so tests can record and
//     confine both.
//   - Memory is bounded: at most Config.MaxNodes unique addresses are kept
//     (later ones are only counted), each connection's buffers are the
//     pipeline's, and a peer's addresses are taken only until the cap.
//
// # Output
//
// The crawler hands one Record per address to a Sink as soon as its outcome
// is known, and one Summary at the end (also when interrupted). JSONLines
// writes them as JSON lines: node lines {"type":"node",...} and a final
// {"type":"summary",...}. Each line goes out in a single Write of the whole
// line, newline included, so a file opened with O_APPEND never holds half a
// line, even after SIGKILL; node lines are at most MaxLine (4,096) bytes.
// A crawl killed before its summary can be summed up again from its node
// lines with Summary.Add.
//
// A node line, reachable:
//
//	{"type":"node","addr":"127.0.0.1:18444","network":"ipv4","source":"seed",
//	 "outcome":"reachable","time":"2025-01-01T12:00:00.123Z","connect_ms":0.21,
//	 "protocol":70016,"services":["NODE_NETWORK","NODE_WITNESS"],"service_bits":9,
//	 "user_agent":"/btcd:0.26.2/","start_height":0,"relay":true,"handshake_ms":1.9,
//	 "addrs_returned":23,"addrs_new":23,"ended":"quiet"}
//
// and failed or not dialled:
//
//	{"type":"node","addr":"127.0.0.2:18444","network":"ipv4","source":"127.0.0.1:18444",
//	 "outcome":"refused","error":"dial tcp 127.0.0.2:18444: connect: connection refused",...}
//	{"type":"node","addr":"8.8.8.8:8333","network":"ipv4","source":"127.0.0.1:18444",
//	 "outcome":"not_dialled","reason":"outside the allowlist",...}
//
// # Outcomes
//
// reachable (handshake done, addresses collected or the getaddr timeout
// passed), refused (ECONNREFUSED), timeout (connect or handshake deadline),
// reset (ECONNRESET/EPIPE before the handshake completed), unreachable (any
// other connect failure: no route, …), handshake_failed (closed, or not the
// protocol, before the handshake completed), closed_after_verack (closed
// after the handshake before any address), self (our own nonce came back),
// version_too_old (below Session.MinProtocol), not_dialled (see Reason).
//
// When the crawl is interrupted (its context ends), nodes whose handshake
// had completed are recorded as reachable (ended "interrupted"); attempts
// cut short before that are not recorded (Summary.Abandoned), nor are queued
// addresses (Summary.Pending).
//
// # Source layout
//
// config.go (Config, its defaults, New), crawler.go (Crawler, Run),
// frontier.go (the seen set, the queue, seeding and learning), visit.go
// (dialling one node and recording its outcome), timers.go (the per-node
// quiet, getaddr and address-cap timers), progress.go (Stats, progress
// lines, the summary and the sink), and beside them allow.go, classify.go,
// limit.go, record.go and sink.go.
package crawler
