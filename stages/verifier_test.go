package stages_test

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/btcpipe/btcpipe/stages"
	"github.com/btcpipe/btcpipe/wire"
)

// verifierRun is the Run method of a verifier.
type verifierRun func(ctx context.Context, in <-chan *stages.Batch, out chan<- *stages.Batch) error

func verifiers(obs stages.Observer, workers int) map[string]verifierRun {
	opts := stages.Options{Magic: magic, Observer: obs, Workers: workers}
	return map[string]verifierRun{
		stages.VerifierSequential: stages.NewSequentialVerifier(opts).Run,
		stages.VerifierParallel:   stages.NewParallelVerifier(opts).Run,
	}
}

// idFrame returns a frame whose 8-byte payload is id, with a checksum that
// is right or (bad) wrong; some frames get a longer payload so that hashing
// times vary.
func idFrame(id uint64, bad bool, extra int) wire.Frame {
	payload := binary.LittleEndian.AppendUint64(make([]byte, 0, 8+extra), id)
	payload = append(payload, make([]byte, extra)...)
	f := wire.Frame{Payload: payload}
	f.Magic = magic
	copy(f.Command[:], wire.CmdTx)
	f.Length = uint32(len(payload))
	f.Checksum = wire.Checksum(payload)
	if bad {
		f.Checksum[3] ^= 0x01
	}
	return f
}

func idOf(payload []byte) uint64 { return binary.LittleEndian.Uint64(payload) }

// batchPlan is the batches to feed a verifier, and what must come out.
type batchPlan struct {
	batches [][]wire.Frame
	good    []uint64 // ids of the good frames, in order
	bad     []uint64 // ids of the bad ones, in order
}

func randomPlan(r *rand.Rand, n int) batchPlan {
	var p batchPlan
	id := uint64(0)
	for range n {
		var frames []wire.Frame
		allBad := r.IntN(10) == 0
		for range 1 + r.IntN(20) {
			id++
			bad := allBad || r.IntN(4) == 0
			extra := 0
			if r.IntN(8) == 0 {
				extra = r.IntN(32 << 10)
			}
			frames = append(frames, idFrame(id, bad, extra))
			if bad {
				p.bad = append(p.bad, id)
			} else {
				p.good = append(p.good, id)
			}
		}
		p.batches = append(p.batches, frames)
	}
	return p
}

// verify feeds p to run and returns the ids that came out, in order, and
// whether any batch came out empty.
func verify(t *testing.T, run verifierRun, p batchPlan, depth int) []uint64 {
	t.Helper()
	ctx := t.Context()
	in := make(chan *stages.Batch, depth)
	out := make(chan *stages.Batch, depth)
	errc := make(chan error, 1)
	go func() {
		err := run(ctx, in, out)
		close(out)
		errc <- err
	}()
	go func() {
		defer close(in)
		for _, frames := range p.batches {
			b := stages.NewBatch()
			for _, f := range frames {
				b.Add(f, nil)
			}
			select {
			case in <- b:
			case <-ctx.Done():
				b.Release()
				return
			}
		}
	}()
	var got []uint64
	for b := range out {
		if len(b.Frames) == 0 {
			t.Errorf("verifier handed on an empty batch")
		}
		for i := range b.Frames {
			got = append(got, idOf(b.Frames[i].Payload))
		}
		b.Release()
	}
	if err := <-errc; err != nil {
		t.Fatalf("Run = %v, want nil when in is closed", err)
	}
	return got
}

func TestVerifiersDropBadChecksumsInOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	plans := map[string]batchPlan{
		"all good":   {batches: [][]wire.Frame{{idFrame(1, false, 0), idFrame(2, false, 0)}}, good: []uint64{1, 2}},
		"all bad":    {batches: [][]wire.Frame{{idFrame(1, true, 0)}, {idFrame(2, true, 0), idFrame(3, true, 0)}}, bad: []uint64{1, 2, 3}},
		"bad middle": {batches: [][]wire.Frame{{idFrame(1, false, 0), idFrame(2, true, 0), idFrame(3, false, 0)}}, good: []uint64{1, 3}, bad: []uint64{2}},
		"empty payload, bad": {batches: [][]wire.Frame{{func() wire.Frame {
			f := idFrame(0, false, 0)
			f.Payload, f.Length, f.Checksum = nil, 0, [4]byte{}
			return f
		}(), idFrame(7, false, 0)}}, good: []uint64{7}},
		"random 400 batches": randomPlan(r, 400),
	}
	for _, workers := range []int{1, 2, 3, 8} {
		for name, p := range plans {
			obs := new(recorder)
			for vname, run := range verifiers(obs, workers) {
				if vname == stages.VerifierSequential && workers != 1 {
					continue
				}
				t.Run(vname+"/"+name+"/workers="+string(rune('0'+workers)), func(t *testing.T) {
					obs.mu.Lock()
					obs.checksumFailed = nil
					obs.mu.Unlock()
					got := verify(t, run, p, 1+r.IntN(4))
					if !slices.Equal(got, p.good) {
						t.Errorf("frames out %v, want %v", got, p.good)
					}
					var dropped []uint64
					for _, payload := range obs.checksumFailed {
						if len(payload) >= 8 {
							dropped = append(dropped, idOf(payload))
						} else {
							dropped = append(dropped, 0)
						}
					}
					slices.Sort(dropped) // the parallel verifier reports from several workers
					want := slices.Clone(p.bad)
					if name == "empty payload, bad" {
						want = []uint64{0}
					}
					if !slices.Equal(dropped, want) {
						t.Errorf("Observer.ChecksumFailed got %v, want %v", dropped, want)
					}
				})
			}
		}
	}
}

// blockingObserver blocks ChecksumFailed until release is closed.
type blockingObserver struct {
	stages.NopObserver
	entered chan struct{}
	release chan struct{}
}

func (o *blockingObserver) ChecksumFailed(*wire.Frame) {
	select {
	case o.entered <- struct{}{}:
	default:
	}
	<-o.release
}

// TestVerifiersReleaseOnCancel cancels a verifier while a batch is being
// hashed and others wait: every batch it took must be released or handed
// on, so that every slab reference comes back.
func TestVerifiersReleaseOnCancel(t *testing.T) {
	for _, name := range []string{stages.VerifierSequential, stages.VerifierParallel} {
		t.Run(name, func(t *testing.T) {
			obs := &blockingObserver{entered: make(chan struct{}, 1), release: make(chan struct{})}
			run := verifiers(obs, 2)[name]
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			slab := stages.NewSlab(1)
			in := make(chan *stages.Batch, 8)
			out := make(chan *stages.Batch) // nobody reads: sends block
			for i := range 8 {
				b := stages.NewBatch()
				b.Add(idFrame(uint64(i), i == 0, 0), slab) // the first is bad: its report blocks
				in <- b
			}
			errc := make(chan error, 1)
			go func() { errc <- run(ctx, in, out) }()
			select {
			case <-obs.entered:
			case <-time.After(2 * time.Second):
				t.Fatal("verifier never reported the bad frame")
			}
			cancel()
			close(obs.release)
			select {
			case err := <-errc:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("Run = %v, want context.Canceled", err)
				}
			case <-time.After(2 * time.Second):
				t.Fatal("Run did not return 2s after ctx was cancelled")
			}
			close(in)
			for b := range in {
				b.Release()
			}
			if got := slab.Refs(); got != 1 {
				t.Errorf("slab has %d references after Run and draining in, want 1 (the test's own)", got)
			}
			slab.Release()
		})
	}
}
