// Package peer is the protocol a btcpipe connection speaks on top of the
// pipeline: the version handshake, getaddr and the counting of the addresses
// that come back, ping and pong, and the timeouts that keep a connection
// honest (Session); one way to open a connection, which dials, runs a
// Session over the pipeline and reports the Outcome (Dialer.Connect); and a
// node that keeps one connection up indefinitely, reconnecting with
// exponential backoff, and stops on what no retry can mend (Node,
// Permanent). The crawler opens its connections with Dialer.Connect too.
package peer
