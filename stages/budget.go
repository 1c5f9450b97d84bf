package stages

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Default budgets (BTCPIPE_CONN_BUDGET, BTCPIPE_MEMORY_BUDGET,
// BTCPIPE_BUDGET_WAIT).
const (
	// DefaultConnBudget is Bitcoin Core's -maxreceivebuffer default,
	// 5,000 KB: room for the largest frame and a read behind it.
	DefaultConnBudget = 5_000_000
	// DefaultProcessBudget is shared by every connection of a process: 512
	// connections' worth of full 256 KiB reads at once, far more than a
	// healthy crawl holds (most read into one 64 KiB slab), so it binds
	// only when many peers stream large frames together.
	DefaultProcessBudget = 128 << 20
	// DefaultBudgetWait is how long a connection waits for room before it
	// is dropped: longer than any honest peer takes to be read.
	DefaultBudgetWait = time.Minute
)

// ErrBudget: a connection waited longer than its budget wait for room to
// read into (Options.BudgetWait).
var ErrBudget = errors.New("receive budget exhausted")

// Budget bounds the bytes of receive buffers (slabs) held at once, like
// Bitcoin Core's -maxreceivebuffer: a connection's budget, and through its
// parent the whole process's, shared by all its connections. The reader
// takes room for a slab before reading into it (Acquire, which waits while
// the budget is spent: the connection stops reading and TCP's flow control
// holds the peer back) and the room comes back when the slab's last
// reference is released. Waiters are served in arrival order, so no
// connection starves the others.
//
// A nil *Budget has no limit. Safe for concurrent use.
type Budget struct {
	name   string
	limit  int64
	parent *Budget

	mu      sync.Mutex
	used    int64
	waiters list.List // of *budgetWaiter, first come first served
}

type budgetWaiter struct {
	n     int64
	ready chan struct{}
}

// NewBudget returns a budget of limit bytes within parent (nil: none);
// name ("connection", "process") appears in errors.
func NewBudget(name string, limit int64, parent *Budget) *Budget {
	return &Budget{name: name, limit: limit, parent: parent}
}

// Limit returns the budget's size in bytes (0 for a nil budget).
func (b *Budget) Limit() int64 {
	if b == nil {
		return 0
	}
	return b.limit
}

// Used returns the bytes held now.
func (b *Budget) Used() int64 {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// Fit returns the largest amount up to n that the budget and its parents
// could ever grant at once (n for a nil budget).
func (b *Budget) Fit(n int64) int64 {
	for ; b != nil; b = b.parent {
		n = min(n, b.limit)
	}
	return n
}

// Acquire takes n bytes from the budget and its parents, waiting while they
// are spent, for at most wait (0: until ctx ends). It fails with ctx's error,
// or with ErrBudget when the wait runs out.
func (b *Budget) Acquire(ctx context.Context, n int64, wait time.Duration) error {
	if b == nil || b.tryAcquire(n) {
		return nil // room at once: no timer, no context (the common case)
	}
	if wait > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, wait, ErrBudget)
		defer cancel()
	}
	for level := b; level != nil; level = level.parent {
		if err := level.acquire(ctx, n); err != nil {
			for l := b; l != level; l = l.parent {
				l.release(n)
			}
			if errors.Is(context.Cause(ctx), ErrBudget) {
				return fmt.Errorf("%w: waited %s for %s (%s budget %s, %s in use)",
					ErrBudget, wait, fmtBytes(n), level.name, fmtBytes(level.limit), fmtBytes(level.Used()))
			}
			return err
		}
	}
	return nil
}

// tryAcquire takes n bytes from the budget and every parent if all have the
// room now and nobody is waiting before us (first come first served), and
// reports whether it did; it takes nothing otherwise.
func (b *Budget) tryAcquire(n int64) bool {
	for level := b; level != nil; level = level.parent {
		level.mu.Lock()
		ok := level.waiters.Len() == 0 && level.used+n <= level.limit
		if ok {
			level.used += n
		}
		level.mu.Unlock()
		if !ok {
			for l := b; l != level; l = l.parent {
				l.release(n)
			}
			return false
		}
	}
	return true
}

// Charge takes n bytes without waiting, even past the limit: for the one
// buffer a frame must have to complete (the framer's assembly slab), which
// waiting could deadlock. The reader then waits until it is given back.
func (b *Budget) Charge(n int64) {
	for ; b != nil; b = b.parent {
		b.mu.Lock()
		b.used += n
		b.mu.Unlock()
	}
}

// Release gives back n bytes taken by Acquire or Charge.
func (b *Budget) Release(n int64) {
	for ; b != nil; b = b.parent {
		b.release(n)
	}
}

func (b *Budget) acquire(ctx context.Context, n int64) error {
	b.mu.Lock()
	if b.waiters.Len() == 0 && b.used+n <= b.limit {
		b.used += n
		b.mu.Unlock()
		return nil
	}
	w := &budgetWaiter{n: n, ready: make(chan struct{})}
	e := b.waiters.PushBack(w)
	b.mu.Unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		b.mu.Lock()
		select {
		case <-w.ready: // granted just now: give it back
			b.used -= n
		default:
			b.waiters.Remove(e)
		}
		b.grant()
		b.mu.Unlock()
		return ctx.Err()
	}
}

func (b *Budget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	if b.used < 0 {
		b.mu.Unlock()
		panic("stages: budget released more than was taken")
	}
	b.grant()
	b.mu.Unlock()
}

// grant wakes the waiters at the front that fit, in order. b.mu is held.
func (b *Budget) grant() {
	for e := b.waiters.Front(); e != nil; e = b.waiters.Front() {
		w := e.Value.(*budgetWaiter)
		if b.used+w.n > b.limit {
			return
		}
		b.used += w.n
		b.waiters.Remove(e)
		close(w.ready)
	}
}

func fmtBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
