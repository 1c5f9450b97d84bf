package benchmarks

import (
	"context"
	"io"
	"net"
	"sync/atomic"
	"testing"

	"github.com/btcpipe/btcpipe/stages"
	"github.com/btcpipe/btcpipe/wire"
)

// writeCorpus is a burst of outgoing messages, queued at once as a session
// queues its replies.
type writeCorpus struct {
	name string
	msgs func() []wire.Message
}

var writeCorpora = []writeCorpus{
	// A peer's burst of pings answered at once: small messages, where
	// gathering saves the most system calls.
	{"pong", func() []wire.Message {
		ms := make([]wire.Message, 1000)
		for i := range ms {
			ms[i] = &wire.Pong{Nonce: uint64(i)}
		}
		return ms
	}},
	// 10 KB messages (transactions relayed).
	{"tx10k", func() []wire.Message {
		ms := make([]wire.Message, 100)
		for i := range ms {
			ms[i] = &wire.Raw{Cmd: wire.CmdTx, Payload: make([]byte, 10_000)}
		}
		return ms
	}},
}

// countingConn counts the writes that reach the socket.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// BenchmarkWrite sends each corpus through each writer onto a loopback TCP
// connection whose other end is read and discarded: the coalescing writer
// against the direct one, ns and system calls (writes/msg) per message.
func BenchmarkWrite(b *testing.B) {
	writers := []struct {
		name string
		new  func(io.Writer, stages.Options) *stages.Writer
	}{
		{"coalescing", stages.NewWriter},
		{"direct", stages.NewDirectWriter},
	}
	for _, wc := range writeCorpora {
		msgs := wc.msgs()
		size := 0
		for _, m := range msgs {
			size += len(wire.AppendMessage(nil, wire.Mainnet.Magic, m))
		}
		b.Run("corpus="+wc.name, func(b *testing.B) {
			for _, w := range writers {
				b.Run("impl="+w.name, func(b *testing.B) {
					ln, err := net.Listen("tcp", "127.0.0.1:0")
					if err != nil {
						b.Fatal(err)
					}
					defer ln.Close()
					drained := make(chan error, 1)
					go func() {
						c, err := ln.Accept()
						if err != nil {
							drained <- err
							return
						}
						_, err = io.Copy(io.Discard, c)
						c.Close()
						drained <- err
					}()
					raw, err := net.Dial("tcp", ln.Addr().String())
					if err != nil {
						b.Fatal(err)
					}
					conn := &countingConn{Conn: raw}
					in := make(chan wire.Message, len(msgs))
					wr := w.new(conn, stages.Options{Peer: "bench", Magic: wire.Mainnet.Magic})
					done := make(chan error, 1)
					go func() { done <- wr.Run(context.Background(), in, nil) }()
					// A pass queues the burst; the queue holds one, so the
					// timer stops with at most one pass not yet written (its
					// writes are counted all the same).
					pass := func() {
						for _, m := range msgs {
							in <- m
						}
					}
					pass()
					b.SetBytes(int64(size))
					b.ReportAllocs()
					conn.writes.Store(0)
					passes := 0
					for b.Loop() {
						pass()
						passes++
					}
					close(in)
					if err := <-done; err != nil {
						b.Fatal(err)
					}
					raw.Close()
					if err := <-drained; err != nil {
						b.Fatal(err)
					}
					n := float64(passes * len(msgs))
					b.ReportMetric(float64(conn.writes.Load())/n, "writes/msg")
					b.ReportMetric(float64(len(msgs)), "msgs/op")
				})
			}
		})
	}
}
