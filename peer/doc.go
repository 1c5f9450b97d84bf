// Package peer is the protocol a btcpipe connection speaks on top of the
// pipeline: the version handshake, getaddr and the counting of the addresses
// that come back, ping and pong, and the timeouts that keep a connection
// honest (Session); and a node that keeps one connection up indefinitely,
// reconnecting with exponential backoff (Node).
package peer
