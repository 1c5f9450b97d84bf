package stages_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/btcpipe/btcpipe/stages"
)

func TestBudgetAcquireWaitsForRelease(t *testing.T) {
	b := stages.NewBudget("connection", 100, nil)
	if err := b.Acquire(t.Context(), 80, 0); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() { got <- b.Acquire(t.Context(), 40, 0) }()
	select {
	case err := <-got:
		t.Fatalf("Acquire past the limit returned %v at once, want it to wait", err)
	case <-time.After(50 * time.Millisecond):
	}
	b.Release(80)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if got := b.Used(); got != 40 {
		t.Errorf("Used = %d, want 40", got)
	}
}

// First come, first served: a request at the front is not overtaken by a
// later, smaller one that would fit, so a large request cannot be starved.
func TestBudgetFIFO(t *testing.T) {
	b := stages.NewBudget("process", 100, nil)
	if err := b.Acquire(t.Context(), 90, 0); err != nil {
		t.Fatal(err)
	}
	done := map[int]chan struct{}{}
	start := func(id int, n int64) {
		done[id] = make(chan struct{})
		go func() {
			if err := b.Acquire(t.Context(), n, 0); err != nil {
				t.Error(err)
			}
			close(done[id])
		}()
		time.Sleep(20 * time.Millisecond) // queue them in this order
	}
	start(1, 60)
	start(2, 50)
	start(3, 5) // fits now (95 of 100), but comes after 1 and 2
	granted := func(id int) bool {
		select {
		case <-done[id]:
			return true
		case <-time.After(50 * time.Millisecond):
			return false
		}
	}
	if granted(3) {
		t.Fatal("waiter 3 overtook waiters 1 and 2")
	}
	b.Release(90) // room for 1 (60); then 2 (50) does not fit, and 3 waits behind it
	if !granted(1) || granted(2) || granted(3) {
		t.Fatal("after the first release: want only waiter 1 served")
	}
	b.Release(60) // room for 2 and then 3
	if !granted(2) || !granted(3) {
		t.Fatal("after the second release: want waiters 2 and 3 served")
	}
	if got := b.Used(); got != 55 {
		t.Errorf("Used = %d, want 55", got)
	}
}

func TestBudgetParentAndTimeout(t *testing.T) {
	process := stages.NewBudget("process", 100, nil)
	a := stages.NewBudget("connection", 80, process)
	c := stages.NewBudget("connection", 80, process)
	if err := a.Acquire(t.Context(), 70, 0); err != nil {
		t.Fatal(err)
	}
	// c has room of its own but the process has not.
	err := c.Acquire(t.Context(), 50, 30*time.Millisecond)
	if !errors.Is(err, stages.ErrBudget) || !strings.Contains(err.Error(), "process budget 100 B") {
		t.Fatalf("Acquire over the process budget = %v, want ErrBudget naming the process budget", err)
	}
	if got := c.Used(); got != 0 {
		t.Errorf("a failed Acquire left %d bytes taken from the connection", got)
	}
	if got := process.Used(); got != 70 {
		t.Errorf("process Used = %d, want 70", got)
	}
	if got := c.Fit(500); got != 80 {
		t.Errorf("Fit(500) = %d, want 80 (the smallest limit)", got)
	}
	// A cancelled wait is ctx's error, not the budget's.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := c.Acquire(ctx, 50, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("Acquire with a cancelled ctx = %v", err)
	}
	// Charge never waits, even past the limit; the reader then waits.
	a.Charge(60)
	if got := process.Used(); got != 130 {
		t.Errorf("after Charge, process Used = %d, want 130", got)
	}
	a.Release(130)
	if got := process.Used(); got != 0 {
		t.Errorf("after Release, process Used = %d, want 0", got)
	}
}

// A nil budget has no limit.
func TestBudgetNil(t *testing.T) {
	var b *stages.Budget
	if err := b.Acquire(t.Context(), 1<<40, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	b.Charge(1)
	b.Release(1)
	if b.Used() != 0 || b.Limit() != 0 || b.Fit(7) != 7 {
		t.Error("a nil budget is not limitless")
	}
}

// endless is a peer that never stops sending.
type endless struct{ reads int }

func (e *endless) Read(p []byte) (int, error) {
	e.reads++
	clear(p)
	return len(p), nil
}

// A connection over its budget stops reading: with nobody taking its
// chunks, the reader holds at most its budget, waits, and after the budget
// wait ends the connection with ErrBudget naming the peer.
func TestReaderStopsAtItsBudget(t *testing.T) {
	budget := stages.NewBudget("connection", 4*stages.MinSlab, nil)
	src := &endless{}
	r := stages.NewReader(src, stages.Options{Peer: "greedy:1", Budget: budget, BudgetWait: 100 * time.Millisecond})
	out := make(chan stages.Chunk, 1000) // nobody reads it
	err := r.Run(t.Context(), nil, out)
	var se *stages.Error
	if !errors.Is(err, stages.ErrBudget) || !errors.As(err, &se) || se.Peer != "greedy:1" || se.Stage != stages.StageReader {
		t.Fatalf("Run = %v, want a reader *stages.Error wrapping ErrBudget naming the peer", err)
	}
	if got := budget.Used(); got > budget.Limit() {
		t.Errorf("reader holds %d bytes, over its budget of %d", got, budget.Limit())
	}
	close(out)
	n := 0
	for c := range out {
		n += len(c.Bytes())
		c.Slab.Release()
	}
	if n > int(budget.Limit()) {
		t.Errorf("reader read %d bytes with a budget of %d", n, budget.Limit())
	}
	if got := budget.Used(); got != 0 {
		t.Errorf("after every chunk was released the budget still has %d bytes taken", got)
	}
}
