package pipeline

import (
	"encoding/hex"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/btcpipe/btcpipe/stages"
	"github.com/btcpipe/btcpipe/wire"
)

// Counters counts what the stages see. Safe for concurrent use.
type Counters struct {
	FramesIn         atomic.Int64
	FramesOut        atomic.Int64
	ChecksumFailures atomic.Int64
	DecodeFailures   atomic.Int64
	Unknown          atomic.Int64 // commands the wire package does not know
	FramesSkipped    atomic.Int64 // frames of commands the session does not want, skipped unread
}

func (c *Counters) Skipped(h *wire.Header) {
	c.FramesSkipped.Add(1)
	if !wire.Known(h.CommandName()) {
		c.Unknown.Add(1)
	}
}

func (c *Counters) FrameIn(*wire.Frame)             { c.FramesIn.Add(1) }
func (c *Counters) ChecksumFailed(*wire.Frame)      { c.ChecksumFailures.Add(1) }
func (c *Counters) DecodeFailed(*wire.Frame, error) { c.DecodeFailures.Add(1) }
func (c *Counters) FrameOut(string, []byte)         { c.FramesOut.Add(1) }
func (c *Counters) Decoded(m wire.Message) {
	if raw, ok := m.(*wire.Raw); ok && !wire.Known(raw.Cmd) {
		c.Unknown.Add(1)
	}
}

// LogObserver logs what the stages see. At debug level it
// hex-dumps every frame received and sent, as the write-up's print_message
// does. Warnings (checksum failures, malformed messages) are rate-limited to
// a burst of 10 and then one a second, with a count of what was suppressed,
// so a flooding peer cannot flood the log.
type LogObserver struct {
	Log *logrus.Entry

	checksumFailures atomic.Int64
	limit            rateLimit
}

// NewLogObserver returns an observer logging to log.
func NewLogObserver(log *logrus.Entry) *LogObserver { return &LogObserver{Log: log} }

// FrameIn dumps the frame at debug level.
func (o *LogObserver) FrameIn(f *wire.Frame) {
	if o.Log.Logger.IsLevelEnabled(logrus.DebugLevel) {
		frame := wire.AppendFrame(make([]byte, 0, wire.HeaderSize+len(f.Payload)), f.Magic, f.CommandName(), f.Payload)
		copy(frame[20:24], f.Checksum[:]) // show the checksum as received
		o.Log.WithFields(logrus.Fields{"command": f.CommandName(), "bytes": len(frame), "dir": "in"}).
			Debugf("received %s (%d bytes)\n%s", f.CommandName(), len(frame), hex.Dump(frame))
	}
}

// Skipped notes, at debug level, a frame the session does not want.
func (o *LogObserver) Skipped(h *wire.Header) {
	if o.Log.Logger.IsLevelEnabled(logrus.DebugLevel) {
		o.Log.WithFields(logrus.Fields{"command": h.CommandName(), "bytes": wire.HeaderSize + int(h.Length), "dir": "in"}).
			Debugf("skipped %s (%d bytes): not wanted", h.CommandName(), wire.HeaderSize+int(h.Length))
	}
}

// ChecksumFailed warns.
func (o *LogObserver) ChecksumFailed(f *wire.Frame) {
	n := o.checksumFailures.Add(1)
	if ok, suppressed := o.limit.allow(); ok {
		o.Log.WithFields(logrus.Fields{
			"command": f.CommandName(), "stage": stages.StageVerifier, "bytes": len(f.Payload),
			"checksum_failures": n, "suppressed": suppressed,
		}).WithError(f.Check()).Warnf("dropped %s frame with a bad checksum (%d bytes)", f.CommandName(), len(f.Payload))
	}
}

// Decoded notes, at debug level, commands the wire package does not know.
func (o *LogObserver) Decoded(m wire.Message) {
	if raw, ok := m.(*wire.Raw); ok && !wire.Known(raw.Cmd) {
		o.Log.WithField("command", raw.Cmd).Debugf("ignored unknown command %q", raw.Cmd)
	}
}

// DecodeFailed warns.
func (o *LogObserver) DecodeFailed(f *wire.Frame, err error) {
	if ok, suppressed := o.limit.allow(); ok {
		o.Log.WithFields(logrus.Fields{
			"command": f.CommandName(), "stage": stages.StageDispatcher, "bytes": len(f.Payload),
			"suppressed": suppressed,
		}).WithError(err).Warnf("dropped malformed %s", f.CommandName())
	}
}

// FrameOut dumps the frame at debug level.
func (o *LogObserver) FrameOut(cmd string, frame []byte) {
	if o.Log.Logger.IsLevelEnabled(logrus.DebugLevel) {
		o.Log.WithFields(logrus.Fields{"command": cmd, "bytes": len(frame), "dir": "out"}).
			Debugf("sending %s (%d bytes)\n%s", cmd, len(frame), hex.Dump(frame))
	}
}

// rateLimit allows a burst of 10 events, then one a second.
type rateLimit struct {
	mu         sync.Mutex
	tokens     float64
	last       time.Time
	suppressed int
}

func (r *rateLimit) allow() (bool, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if r.last.IsZero() {
		r.tokens = 10
	} else {
		r.tokens = min(10, r.tokens+now.Sub(r.last).Seconds())
	}
	r.last = now
	if r.tokens < 1 {
		r.suppressed++
		return false, 0
	}
	r.tokens--
	s := r.suppressed
	r.suppressed = 0
	return true, s
}

// Observers fans events out to several observers.
type Observers []stages.Observer

func (os Observers) FrameIn(f *wire.Frame) {
	for _, o := range os {
		o.FrameIn(f)
	}
}
func (os Observers) ChecksumFailed(f *wire.Frame) {
	for _, o := range os {
		o.ChecksumFailed(f)
	}
}
func (os Observers) Decoded(m wire.Message) {
	for _, o := range os {
		o.Decoded(m)
	}
}
func (os Observers) DecodeFailed(f *wire.Frame, err error) {
	for _, o := range os {
		o.DecodeFailed(f, err)
	}
}
func (os Observers) FrameOut(cmd string, frame []byte) {
	for _, o := range os {
		o.FrameOut(cmd, frame)
	}
}
func (os Observers) Skipped(h *wire.Header) {
	for _, o := range os {
		o.Skipped(h)
	}
}
