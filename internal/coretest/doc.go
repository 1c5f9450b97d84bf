// Package coretest runs Bitcoin Core (bitcoind) as a regtest test peer for
// btcpipe's end-to-end tests, beside internal/btcdtest which does the same for
// btcd. Nearly every node of the real network runs Core, so these tests check
// btcpipe against the implementation that matters most.
//
// # Finding bitcoind
//
// FindBinary takes $BTCPIPE_BITCOIND, else bitcoind on PATH; bitcoin-cli is
// $BTCPIPE_BITCOIN_CLI, else the bitcoin-cli beside bitcoind, else on PATH.
// .ci/run points BTCPIPE_BITCOIND at ../shared/bitcoin-core/bitcoind when that
// exists. Binary (for tests) skips with one line when there is none, and fails
// under CI=true.
//
// # Safety
//
// Every bitcoind started here runs with -regtest, a fresh temporary datadir,
// -connect=0 (no outbound connection at all, so the addresses a test teaches
// it with addpeeraddress are data and are never dialled), -dnsseed=0
// -fixedseeds=0 -discover=0 -listenonion=0 -natpmp=0, and listens (P2P and
// RPC) on 127.0.0.1 only — or, with Options.Netns, on an address that exists
// only inside a network namespace the test created, with RPC on that
// namespace's 127.0.0.1 and every command run through `ip netns exec`.
// Dial (the package's own minimal client) refuses any address that is not
// loopback unless the calling process runs in a network namespace other than
// the one of PID 1.
//
// # Readiness and speed
//
// StartNode returns once `getnetworkinfo` answers over RPC (about 0.3–1 s on
// two cores); Stop asks RPC `stop` and waits, then SIGKILLs after StopTimeout.
// Tests that need only independent connections share one node per package
// (see the tests in this package).
//
// # What Core answers to getaddr (src/net_processing.cpp, net.cpp)
//
// Core answers getaddr only from inbound peers and only once per connection
// ("Ignoring repeated getaddr"). Without the Addr permission the answer comes
// from a cache (CConnman::GetAddresses with a cache id made of the requester's
// network and the local address of the socket), rebuilt every 21–27 hours, of
// at most MaxAddrToSend (1000) addresses and at most MaxPctAddrToSend (23)
// percent of the address manager, rounded down, chosen at random, leaving out
// terrible ones. So every IPv4 client connecting to the same listening address
// gets the same answer for a day. Addresses the peer sent us itself are left
// out (m_addr_known). Inbound address relay is set up only on the first
// getaddr/addr, so the answer is sent at once rather than on the 30 s addr
// timer. Core announces its own address only outside initial block download,
// and a fresh regtest node is in IBD, so there is no self-announcement here.
package coretest
