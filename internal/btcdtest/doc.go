// Package btcdtest runs a real btcd (v0.26.2, pinned) as a loopback-only test
// peer for btcpipe's tests and demo, and talks to it with btcd's own wire
// package as an independent oracle.
//
// It is used only by tests and by internal/demo. Tests call Binary and Start,
// which skip (or, under CI=true, fail) when no btcd can be had and clean up
// after themselves; a program calls FindBinary, StartNode and Node.Close.
//
// # Safety
//
// Every btcd started here runs with --regtest or --simnet, --listen on
// 127.0.0.1, --connect=127.0.0.1:1 (so its address manager never dials an
// address it learns), --nodnsseed, --norpc, fresh temporary --datadir and
// --logdir, HOME pointed at the temporary directory, and small caches
// (--utxocachemaxsize=1 --sigcachemaxsize=0). Options.ExtraArgs may not
// override any of that. Dial refuses any address that is not loopback.
//
// # Readiness
//
// StartNode waits for a completed version/verack handshake, not an open port.
// On a 2-core machine btcd completes one 12–45 ms after exec (the first start
// in a process is the slowest; under -race too), a Restart takes about 20 ms,
// and btcd stops on SIGINT in 4–7 ms, saving its address manager to
// DataDir/<network>/peers.json. The wait is bounded by DefaultReadyTimeout
// (15 s); it ends early when btcd exits (a bad flag, a port in use), and a
// failure carries the tail of btcd's output.
//
// # What btcd v0.26.2 does with seeded addresses (found by experiment)
//
// SeedAddrs sends addr messages from one inbound connection and ends with a
// ping/pong round trip; btcd handles a peer's messages in order on one
// goroutine and adds addr entries to its address manager synchronously, so the
// pong proves they were processed. Seeding 400 addresses takes about 2 ms.
//
// How many btcd stored can be read two ways: start it with
// --debuglevel=AMGR=trace, and the address manager logs "Added new address X
// for a total of N addresses" for each address it stores, the last N being the
// total (Node.AddrCount reads it); or restart it (Node.Restart), and it logs
// "Loaded N addresses from file" from the peers.json it saved on SIGINT.
//
// A getaddr from a later inbound connection (GetAddr) then returns exactly
// floor(stored × 23 / 100) addresses, every one of them from the seeded set,
// each once. Measured with addresses from RoutableAddrs (one per /16):
//
//	seeded  stored  getaddr
//	   300     300       69
//	   400     400       92
//	 1,000   1,000      230
//	 2,000   1,999      459
//	 3,000   2,808      645
//	 4,000   3,688      848
//
// Not all are stored beyond about a thousand because of how the address
// manager buckets them: an address from a source goes to one of 64 slots
// chosen by hash(key, its /16, the source's group), and each slot maps to one
// of 1,024 "new" buckets by hash(key, source group, slot), so two slots can
// share a bucket; a bucket holds 65 addresses before btcd evicts the oldest.
// Every loopback source has the group "local", so everything seeded over
// loopback counts as one source. The key is random per fresh datadir, so the
// loss varies between runs; a simulation of that scheme gives a chance of
// losing any address of under 1 in 20,000 for 800 addresses, 3 in 10,000 for
// 1,000, 3 % for 1,500 and 50 % for 2,000. Seed at most 800 when every address
// must be stored; the ceiling is 64 × 65 = 4,160.
//
// Other findings from btcd's source:
//   - btcd answers getaddr only once per connection, only to an inbound peer,
//     and never on simnet, where it also ignores addr and addrv2
//     (ErrSimnetIgnoresAddr). When 23 % rounds down to zero it sends nothing.
//   - The answer is capped at 2,500 and then truncated (not split) to one
//     message of at most 1,000 addresses (peer.PushAddrMsg). The cap cannot be
//     reached by seeding over loopback: 1,000 needs 4,348 stored.
//   - Unroutable addresses are dropped silently (see IsRoutable); besides the
//     ranges in PROTOCOL-NOTES that includes 198.18.0.0/15 (RFC 2544) and
//     100.64.0.0/10 (RFC 6598).
//   - btcd rewrites a timestamp more than 10 minutes in the future to 5 days
//     ago; SeedAddrs uses the current time.
package btcdtest
