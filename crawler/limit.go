package crawler

import (
	"context"
	"sync"
	"time"
)

// limiter spaces events at least 1/rate apart: each call to wait gets the
// next free slot and sleeps until it. No burst, no goroutine. A rate of 0 or
// less means no limit. Safe for concurrent use.
type limiter struct {
	interval time.Duration
	now      func() time.Time
	sleep    func(ctx context.Context, d time.Duration) error

	mu   sync.Mutex
	next time.Time
}

func newLimiter(rate float64) *limiter {
	l := &limiter{now: time.Now, sleep: sleepCtx}
	if rate > 0 {
		l.interval = time.Duration(float64(time.Second) / rate)
		if l.interval <= 0 {
			l.interval = 1
		}
	}
	return l
}

// wait blocks until the caller's slot, or until ctx ends (the slot is then
// lost, which only makes the rate lower).
func (l *limiter) wait(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if l.interval <= 0 {
		return nil
	}
	l.mu.Lock()
	now := l.now()
	slot := l.next
	if slot.Before(now) {
		slot = now
	}
	l.next = slot.Add(l.interval)
	l.mu.Unlock()
	if d := slot.Sub(now); d > 0 {
		return l.sleep(ctx, d)
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
