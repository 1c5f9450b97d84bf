package stages

import (
	"context"

	"golang.org/x/sync/errgroup"
)

// Verifier names, for the pipeline's registry.
const (
	VerifierSequential = "sequential"
	VerifierParallel   = "parallel"
)

// verify drops the frames of b whose checksum is wrong, reporting each, and
// keeps the order of the rest. It does not allocate.
func verify(b *Batch, obs Observer) {
	kept := b.Frames[:0]
	for i := range b.Frames {
		if b.Frames[i].Verify() {
			kept = append(kept, b.Frames[i])
		} else {
			obs.ChecksumFailed(&b.Frames[i])
		}
	}
	clear(b.Frames[len(kept):])
	b.Frames = kept
}

// VerifyBatch does to b what the verifier stages do to each batch: it drops
// the frames whose checksum is wrong, reporting each to obs, and keeps the
// order of the rest. It is for callers that drive the stages without
// goroutines (benchmarks, tools). It does not allocate.
func VerifyBatch(b *Batch, obs Observer) { verify(b, obs) }

// SequentialVerifier checks every frame's checksum on its own goroutine,
// dropping (and reporting) frames whose checksum is wrong. The connection
// stays up, as Bitcoin Core keeps it up.
type SequentialVerifier struct{ Opts Options }

// NewSequentialVerifier returns a sequential verifier.
func NewSequentialVerifier(opts Options) *SequentialVerifier {
	return &SequentialVerifier{Opts: opts.Defaults()}
}

// Run verifies batches from in until it is closed or ctx ends. A batch left
// with no frames is released here.
func (v *SequentialVerifier) Run(ctx context.Context, in <-chan *Batch, out chan<- *Batch) error {
	for {
		select {
		case b, ok := <-in:
			if !ok {
				return nil
			}
			verify(b, v.Opts.Observer)
			if len(b.Frames) == 0 {
				b.Release()
				continue
			}
			if err := send(ctx, out, b); err != nil {
				b.Release()
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// ParallelVerifier hashes batches on Opts.Workers goroutines and hands them
// on in the order they came. It pays off when hashing dominates (large
// messages) and there are cores to spare.
type ParallelVerifier struct{ Opts Options }

// NewParallelVerifier returns a parallel verifier.
func NewParallelVerifier(opts Options) *ParallelVerifier {
	return &ParallelVerifier{Opts: opts.Defaults()}
}

// verifyJob is one batch in flight; done is signalled when it is verified.
type verifyJob struct {
	b    *Batch
	done chan struct{}
}

// Run verifies batches from in until it is closed or ctx ends. At most
// 2×Workers batches are in flight; a fixed set of jobs is recycled, so the
// stage does not allocate per batch.
func (v *ParallelVerifier) Run(ctx context.Context, in <-chan *Batch, out chan<- *Batch) error {
	workers := v.Opts.Workers
	inflight := 2 * workers
	free := make(chan *verifyJob, inflight)
	jobs := make([]*verifyJob, inflight)
	for i := range jobs {
		jobs[i] = &verifyJob{done: make(chan struct{}, 1)}
		free <- jobs[i]
	}
	work := make(chan *verifyJob, inflight)  // to the workers, any order
	order := make(chan *verifyJob, inflight) // to the collector, arrival order

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { // distributor
		defer close(work)
		defer close(order)
		for {
			var b *Batch
			select {
			case bb, ok := <-in:
				if !ok {
					return nil
				}
				b = bb
			case <-ctx.Done():
				return ctx.Err()
			}
			var j *verifyJob
			select {
			case j = <-free:
			case <-ctx.Done():
				b.Release()
				return ctx.Err()
			}
			j.b = b
			order <- j // cannot block: at most inflight jobs exist
			work <- j
		}
	})
	for range workers {
		g.Go(func() error {
			for j := range work {
				verify(j.b, v.Opts.Observer)
				j.done <- struct{}{}
			}
			return nil
		})
	}
	g.Go(func() error { // collector
		for j := range order {
			select {
			case <-j.done:
			case <-ctx.Done():
				return ctx.Err()
			}
			b := j.b
			j.b = nil
			free <- j
			if len(b.Frames) == 0 {
				b.Release()
				continue
			}
			if err := send(ctx, out, b); err != nil {
				b.Release()
				return err
			}
		}
		return nil
	})
	err := g.Wait()
	// When ctx ended, batches taken but not handed on are still in jobs.
	for _, j := range jobs {
		if j.b != nil {
			j.b.Release()
			j.b = nil
		}
	}
	return err
}
