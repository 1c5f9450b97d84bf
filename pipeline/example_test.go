package pipeline_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/netip"
	"sync"

	"github.com/btcpipe/btcpipe/pipeline"
	"github.com/btcpipe/btcpipe/stages"
	"github.com/btcpipe/btcpipe/wire"
)

// tally is a stages.Handler that counts the messages it is handed, by
// command.
type tally struct {
	mu     sync.Mutex
	counts map[string]int
}

func (t *tally) Start(ctx context.Context, _ stages.Sender) error {
	<-ctx.Done() // nothing to send; ends when the stream does
	return ctx.Err()
}

func (t *tally) Handle(_ context.Context, m wire.Message, _ stages.Sender) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.counts[m.Command()]++
	return nil
}

// Stages are chosen by name: the same recorded stream runs through the
// sequential and the parallel checksum verifier, which must agree. (From
// the command line: BTCPIPE_VERIFIER=parallel.)
func ExampleConfig_verifier() {
	// A recorded stream: a handshake, two addr messages, three pings, and
	// one ping whose checksum was damaged on the way.
	magic := wire.Regtest.Magic
	addr := &wire.Addr{List: []wire.TimedNetAddr{{NetAddr: wire.NetAddr{Addr: netip.MustParseAddrPort("1.2.3.4:8333")}}}}
	var stream []byte
	for _, m := range []wire.Message{
		&wire.Version{Protocol: wire.ProtocolVersion, UserAgent: "/example/"}, &wire.SendAddrV2{}, &wire.Verack{},
		&wire.Ping{Nonce: 1, HasNonce: true}, addr, &wire.Ping{Nonce: 2, HasNonce: true}, addr,
	} {
		stream = wire.AppendMessage(stream, magic, m)
	}
	bad := wire.AppendMessage(nil, magic, &wire.Ping{Nonce: 3, HasNonce: true})
	bad[20] ^= 0xff // the checksum's first byte
	stream = append(stream, bad...)
	stream = wire.AppendMessage(stream, magic, &wire.Ping{Nonce: 4, HasNonce: true})

	for _, verifier := range []string{"sequential", "parallel"} {
		h := &tally{counts: map[string]int{}}
		counters := new(pipeline.Counters)
		p, err := pipeline.New(bytes.NewReader(stream), io.Discard, nil, h, pipeline.Config{
			Options:  stages.Options{Magic: magic, Observer: counters, Workers: 4},
			Verifier: verifier,
			EndAtEOF: true, // a recording: its end is not an error
		})
		if err != nil {
			fmt.Println(err)
			return
		}
		if err := p.Run(context.Background()); err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%-10s %v; %d frames, %d bad checksums dropped\n",
			verifier, h.counts, counters.FramesIn.Load(), counters.ChecksumFailures.Load())
	}
	// Output:
	// sequential map[addr:2 ping:3 sendaddrv2:1 verack:1 version:1]; 9 frames, 1 bad checksums dropped
	// parallel   map[addr:2 ping:3 sendaddrv2:1 verack:1 version:1]; 9 frames, 1 bad checksums dropped
}
