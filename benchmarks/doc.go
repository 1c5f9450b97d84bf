// Package benchmarks measures btcpipe's inbound hot path — framing, checksum
// verification, decoding and the whole pipeline — against btcd's
// wire.ReadMessage on the same bytes and against the cost of SHA-256d alone.
// It holds only benchmarks and the tests that check them; `make bench` runs
// them and prints the table (see RESULTS.md for the latest one).
//
// # Corpora
//
// Every corpus is one byte stream of mainnet frames, built deterministically
// in code (a fixed PRNG seed) and repeated to about 2 MiB (the block corpus:
// four blocks), plus one stream recorded from a real btcd:
//
//	verack     empty payloads
//	ping       8-byte nonces
//	version    a Bitcoin Core 27-like version (user agent, relay)
//	addr       addr with 1,000 entries (IPv4, as btcd and Core send them)
//	addrv2     addrv2 with 1,000 entries: 60 % IPv4, 15 % IPv6, 20 % Tor v3,
//	           4 % I2P, 1 % CJDNS (roughly what a mainnet addrman holds)
//	inv        inv with 500 MSG_WTX entries
//	tx250      legacy (non-witness) transactions of exactly 250 bytes
//	tx10k      legacy transactions of exactly 10,000 bytes
//	block      blocks of about 1 MB of legacy transactions drawn like mix's
//	mix        a mainnet-like mix (below)
//	recorded   cmd/btcpipe/testdata/btcd-regtest.rec, what btcd v0.26.2 sent
//	           btcpipe on regtest (version, sendaddrv2, verack, addrv2, addr,
//	           pong), repeated
//
// Transactions are legacy so that btcd's ReadMessage, which decodes with
// BaseEncoding, accepts them; the framing and checksum cost depends only on
// the sizes.
//
// The mix models what one connection of a relaying full node receives in
// about a minute, per 1,000 messages: 430 inv (1–20 wtxid entries each),
// 430 tx, 112 getdata (1–10 entries), 10 addrv2 (1–10 entries), 6 ping,
// 6 pong, 5 headers (one header each) and 1 feefilter. Why: Bitcoin Core
// trickles transaction invs to each peer in batches every 2–5 s, and a node
// with 8–10 peers fetches each transaction from one of them, so per
// connection tx messages come about as often as inv messages; the peer asks
// for some of what we announce (getdata); pings come every 2 minutes, headers
// once per block, addr relays a few times a minute. Transaction sizes: 1 input
// (60 %), 2 (20 %), 3–5 (12 %), 6–20 (6 %) or 21–60 (2 %); 1 output (15 %), 2
// (70 %) or 3–10 (15 %); about 148 bytes per input and 34 per output, so most
// are 200–400 bytes, with a long tail. Blocks are left out (a node that
// relays transactions rarely receives whole blocks; the block corpus covers
// them) and so are commands btcd cannot decode (sendcmpct, cmpctblock).
//
// # Variants
//
// BenchmarkDecode/corpus=C/impl=I runs, for every corpus C:
//
//	framer        stages.Framer.Push + Batch.Release in one goroutine
//	verifier      Push + stages.VerifyBatch + Release in one goroutine
//	decoder       Push + VerifyBatch + Dispatcher.Dispatch (wire.Decoder,
//	              no-op handler) + Release in one goroutine
//	pipeline-seq  one long-lived pipeline.New (reader → framer → sequential
//	              verifier → dispatcher, no-op handler, writer to io.Discard),
//	              fed the corpus pass after pass as 64 KiB socket reads
//	pipeline-par  the same with the parallel verifier (GOMAXPROCS workers)
//	btcd          btcd's wire.ReadMessage(bytes.Reader, 70016, net) until EOF:
//	              the anchor
//	sha256d       SHA-256(SHA-256(payload)) of every payload: the physical
//	              limit for the checksum
//
// BenchmarkDecodeV2/corpus=C/impl=I runs, for C in ping, addr, tx10k,
// block and mix re-encoded as BIP324 packets (the same messages, sealed in
// order under fixed keys; MB/s is of the packet stream):
//
//	v2-decoder        stages.V2Framer.Push + V2Verifier.Open + Dispatcher.
//	                  Dispatch + Release in one goroutine (decoder's v2 twin)
//	v2-btcd           btcd's v2transport Peer.V2ReceivePacket until EOF (the
//	                  transport only; its receive ciphers are reset by
//	                  reflection before each pass)
//	chacha20poly1305  x/crypto's AEAD Open in place over every packet's sealed
//	                  part with its key and nonce: the limit
//
// Ours and the limit decrypt in place, so each of their passes first copies
// the sealed stream back (the copy a reader makes from the socket).
//
// The one-goroutine variants feed the framer chunks exactly as the reader
// cut them: the stream is read once through a stages.Reader whose source
// returns at most 64 KiB per Read (like a socket), and the resulting chunks —
// consecutive windows of the reader's slabs — are replayed on every pass
// without copying. The reader's ReadHint starts at the corpus's largest
// frame, as on a connection that has seen such frames, so the slabs are as
// large as the reader makes them in steady state; a frame that straddles two
// slabs is still copied once by the framer, as it is in production
// (TestCorpora -v reports how many per pass). The pipeline variants read
// the stream anew on every pass, so they also pay for the copy into the
// slabs, as btcd pays for reading into its buffers; consecutive passes flow
// into each other like the reads of one connection (at most two in flight).
//
// Each benchmark reports MB/s (b.SetBytes), allocs/op (b.ReportAllocs, after
// one warm-up pass), msgs/op, msgs/s and cpu-ns/op (the process's CPU time
// per pass, the garbage collector's included); benchmarks/report turns
// `go test -bench` output into the table with MB/s, msgs/s, allocs and CPU
// time per message and the ratios to btcd and to SHA-256d. `make bench` runs
// it; RESULTS.md holds the latest table and what profiling found.
package benchmarks
