package benchmarks

import (
	"bytes"
	"context"
	"maps"
	"sync"
	"testing"

	btcdwire "github.com/btcsuite/btcd/wire/v2"

	"github.com/btcpipe/btcpipe/stages"
	"github.com/btcpipe/btcpipe/wire"
)

// tallyObserver counts checksum and decode failures, and frames by command.
type tallyObserver struct {
	stages.NopObserver
	mu         sync.Mutex
	checksum   int
	decodeFail int
	decoded    map[string]int
}

func (o *tallyObserver) ChecksumFailed(*wire.Frame) {
	o.mu.Lock()
	o.checksum++
	o.mu.Unlock()
}

func (o *tallyObserver) DecodeFailed(*wire.Frame, error) {
	o.mu.Lock()
	o.decodeFail++
	o.mu.Unlock()
}

func (o *tallyObserver) Decoded(m wire.Message) {
	o.mu.Lock()
	o.decoded[m.Command()]++
	o.mu.Unlock()
}

// TestCorpora checks that every corpus is what the benchmarks assume: btcd
// decodes every frame; btcpipe's framer, verifier and decoder, fed the
// chunks as the reader cut them, get the same messages by command with no
// checksum or decode failure; and the pipeline and every benchmark pass
// count every message. It logs each corpus's size and how many frames
// straddle two slabs.
func TestCorpora(t *testing.T) {
	for _, d := range corpusDefs {
		t.Run(d.name, func(t *testing.T) {
			c, err := getCorpus(d)
			if err != nil {
				t.Fatal(err)
			}
			if c.frames() == 0 {
				t.Fatal("empty corpus")
			}

			// btcd, the independent decoder.
			want := map[string]int{}
			r := bytes.NewReader(c.stream)
			for r.Len() > 0 {
				m, _, err := btcdwire.ReadMessage(r, btcdProtocol, btcdwire.BitcoinNet(c.magic))
				if err != nil {
					t.Fatalf("btcd: at offset %d: %v", len(c.stream)-r.Len(), err)
				}
				want[m.Command()]++
			}

			l, err := getLayout(c)
			if err != nil {
				t.Fatal(err)
			}
			obs := &tallyObserver{decoded: map[string]int{}}
			opts := readerOptions(c)
			opts.Observer = obs
			opts = opts.Defaults()
			h := &countHandler{}
			disp := stages.NewDispatcher(h, opts)
			n, err := l.replay(stages.NewFramer(opts), func(b *stages.Batch) {
				stages.VerifyBatch(b, obs)
				if err := disp.Dispatch(context.Background(), b, nil); err != nil {
					t.Errorf("dispatch: %v", err)
				}
				b.Release()
			})
			if err != nil {
				t.Fatal(err)
			}
			if n != c.frames() || h.n != c.frames() {
				t.Errorf("framer cut %d frames and the handler got %d, want %d", n, h.n, c.frames())
			}
			if obs.checksum != 0 || obs.decodeFail != 0 {
				t.Errorf("%d checksum failures, %d decode failures, want none", obs.checksum, obs.decodeFail)
			}
			if !maps.Equal(obs.decoded, want) {
				t.Errorf("btcpipe decoded %v, btcd %v", obs.decoded, want)
			}

			// Every benchmark pass but btcd's (run above), twice: the
			// second from a warm state.
			for _, im := range impls {
				if im.name == "btcd" {
					continue
				}
				r := im.setup(t, c, l)
				got := 0
				for range 2 {
					n, err := r.pass()
					if err != nil {
						t.Errorf("%s: %v", im.name, err)
					}
					got += n
				}
				n, err := r.done()
				if err != nil || got+n != 2*c.frames() {
					t.Errorf("%s: %d messages in two passes, %v; want %d", im.name, got+n, err, 2*c.frames())
				}
			}
			t.Logf("%-8s %4d frames, %8d bytes, largest %7d; %d chunks in %d slabs, %d frames straddle two slabs",
				c.name, c.frames(), len(c.stream), c.maxFrame, len(l.chunks), len(l.slabs), l.straddles)
		})
	}
}

// TestMixProportions checks the mix's commands against the documented
// proportions.
func TestMixProportions(t *testing.T) {
	c, err := getCorpus(corpusDefs[len(corpusDefs)-2])
	if err != nil || c.name != "mix" {
		t.Fatalf("corpus %v, %v; want mix", c, err)
	}
	got := map[string]int{}
	for off := 0; off < len(c.stream); {
		f, n, err := wire.ScanFrame(c.stream[off:], c.magic)
		if err != nil || n == 0 {
			t.Fatalf("at %d: %v", off, err)
		}
		got[f.CommandName()]++
		off += n
	}
	cycles := c.frames() / 1000
	if c.frames()%1000 != 0 || cycles == 0 {
		t.Fatalf("%d frames: not whole cycles of 1,000", c.frames())
	}
	per := map[string]int{"inv": 430, "tx": 430, "getdata": 112, "addrv2": 10, "ping": 6, "pong": 6, "headers": 5, "feefilter": 1}
	for k, v := range per {
		per[k] = v * cycles
	}
	if !maps.Equal(got, per) {
		t.Errorf("mix has %v, want %v", got, per)
	}
}
