// Package crawler walks the Bitcoin network: starting from seed addresses
// it connects to every address it learns, on every BIP155 network it has a
// way to (netreach: IPv4 and IPv6 directly or through a proxy, Tor v3
// through a SOCKS5 proxy, I2P through a SAM bridge, CJDNS directly), with
// the same pipeline, peer.Session and transport policy (BIP324 v2 where the
// peer speaks it) as btcpipe node, completes the version
// handshake, sends getaddr and a ping, collects the addr/addrv2 answer until
// it is complete, records the node, queues every newly learned address (each
// address once), and goes on until nothing new is left. `btcpipe crawl` is
// its command.
//
// # Politeness and safety
//
//   - At most Config.Concurrency connections are open at once (an
//     errgroup with SetLimit), and new connections start at most
//     Config.DialRate per second.
//   - Every connection is bounded: a connect timeout (longer through a
//     proxy), a handshake timeout, and after the handshake a getaddr
//     timeout. A session ends as soon as the peer's getaddr answer is
//     complete (see below), or the peer has sent Config.MaxAddrsPerNode
//     entries; the crawler then cancels the session's context, which
//     closes the connection. Each address is dialled once per crawl.
//   - Only IP addresses inside the allowlist are dialled (directly or
//     through Reach.Proxy), and never a bogon (private, loopback,
//     link-local, documentation, multicast… see Bogons) unless the
//     allowlist names its range explicitly (Allowlist.Check). The default
//     allowlist is every public address for mainnet, the testnets and
//     signet, and loopback only for regtest and simnet. Tor v3 and I2P
//     addresses are dialled only through their proxy (Config.Reach), CJDNS
//     ones only when Reach.CJDNSReachable; otherwise they are recorded
//     not_dialled with the reason, as are addresses onlynet excludes. Every
//     direct connection goes through the allowlist check and Config.Dial,
//     every proxy connection through Reach.ProxyDial, and every name
//     resolution through Config.Resolve, so tests can record and confine
//     all three.
//   - Addresses announced longer ago than Config.MaxAge are not dialled:
//     they are recorded not_dialled ("stale: …") at the end of the crawl,
//     unless announced afresh meanwhile.
//   - Memory is bounded: at most Config.MaxNodes unique addresses are kept
//     (later ones are only counted), each connection's buffers are the
//     pipeline's, and a peer's addresses are taken only until the cap.
//
// # When an answer is complete
//
// Bitcoin Core answers the first getaddr of an inbound connection in one
// addr/addrv2 message of at most 1,000 entries (its self-announcement
// queued into the same message in current versions; alone, right after the
// handshake, in older ones, whose answer then follows at the next address
// trickle), and sends nothing when it has nothing. btcd sends up to 2,500
// in messages of 1,000, or nothing. Both answer in order, so the pong to
// the ping sent right after getaddr comes after the whole answer. A
// session therefore ends (Handshake.Ended) on an answer message of fewer
// than 1,000 entries, on a 1,000-entry one from Bitcoin Core ("/Satoshi:"),
// on a total of 2,500, or on the pong (EndedAnswer; EndedNoAnswer when
// nothing came) — except after a lone self-announcement, when it waits for
// the answer up to the getaddr timeout; after a full 1,000-entry message
// from another implementation, on the pong or Config.Quiet. The
// self-announcement (an entry naming the address dialled, or the one entry
// of a first one-entry message naming another network) is counted apart.
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
//	 "addrs_returned":23,"addrs_new":23,"addr_messages":1,"ended":"answer_complete"}
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
