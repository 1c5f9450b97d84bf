package crawler

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/btcpipe/btcpipe/internal/simnet"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testTimeout bounds each crawl in the tests.
const testTimeout = 2 * time.Minute

func testContext(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// dialRecorder is the crawler's Dial in tests: it records every attempt,
// refuses (and reports) anything that is not loopback inside allow, and
// counts the connections open at once.
type dialRecorder struct {
	t      testing.TB
	allow  netip.Prefix
	allow6 bool // ::1 too

	mu        sync.Mutex
	dials     []netip.AddrPort
	forbidden []netip.AddrPort
	open      int
	peak      int
}

func newDialRecorder(t testing.TB, allow netip.Prefix) *dialRecorder {
	return &dialRecorder{t: t, allow: allow}
}

func (d *dialRecorder) dial(ctx context.Context, ap netip.AddrPort) (net.Conn, error) {
	d.mu.Lock()
	d.dials = append(d.dials, ap)
	if !ap.Addr().IsLoopback() || !(d.allow.Contains(ap.Addr()) || d.allow6 && ap.Addr() == netip.IPv6Loopback()) {
		d.forbidden = append(d.forbidden, ap)
		d.mu.Unlock()
		return nil, fmt.Errorf("test dialer: %v is outside %v; not dialled", ap, d.allow)
	}
	d.open++
	d.peak = max(d.peak, d.open)
	d.mu.Unlock()
	var nd net.Dialer
	c, err := nd.DialContext(ctx, "tcp", ap.String())
	if err != nil {
		d.closed()
		return nil, err
	}
	return &countedConn{Conn: c, d: d}, nil
}

func (d *dialRecorder) closed() {
	d.mu.Lock()
	d.open--
	d.mu.Unlock()
}

// snapshot returns the dials, the forbidden ones, the open count and peak.
func (d *dialRecorder) snapshot() (dials, forbidden []netip.AddrPort, open, peak int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]netip.AddrPort(nil), d.dials...), append([]netip.AddrPort(nil), d.forbidden...), d.open, d.peak
}

type countedConn struct {
	net.Conn
	d    *dialRecorder
	once sync.Once
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.d.closed)
	return err
}

// memSink keeps every record and the summary, and also writes them through
// JSONLines so the tests can check the lines parse back to the same values.
type memSink struct {
	mu      sync.Mutex
	records []Record
	summary *Summary
	lines   bytes.Buffer
	jl      *JSONLines
	// onRecord, if set, is called after each record with the count so far.
	onRecord func(n int)
	// failAfter, if > 0, makes the sink fail from that record on.
	failAfter int
}

func newMemSink() *memSink {
	s := &memSink{}
	s.jl = NewJSONLines(&s.lines)
	return s
}

func (s *memSink) Record(r *Record) error {
	s.mu.Lock()
	if s.failAfter > 0 && len(s.records) >= s.failAfter {
		s.mu.Unlock()
		return fmt.Errorf("sink full")
	}
	s.records = append(s.records, *r)
	n := len(s.records)
	err := s.jl.Record(r)
	s.mu.Unlock()
	if s.onRecord != nil {
		s.onRecord(n)
	}
	return err
}

func (s *memSink) Summary(sum *Summary) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := *sum
	s.summary = &c
	return s.jl.Summary(sum)
}

// parseLines parses JSON lines: node records and at most one summary, which
// must be last. It fails the test on anything else.
func parseLines(t testing.TB, b []byte) ([]Record, *Summary) {
	t.Helper()
	var recs []Record
	var sum *Summary
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Fatalf("output does not end with a newline: %q", tail(b))
	}
	for i, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		if len(line) == 0 && len(b) == 0 {
			break
		}
		var probe struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(line, &probe); err != nil {
			t.Fatalf("line %d is not JSON (%v): %q", i+1, err, line)
		}
		if sum != nil {
			t.Fatalf("line %d follows the summary: %q", i+1, line)
		}
		switch probe.Type {
		case RecordType:
			var r Record
			dec := json.NewDecoder(bytes.NewReader(line))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&r); err != nil {
				t.Fatalf("line %d: %v: %q", i+1, err, line)
			}
			recs = append(recs, r)
		case SummaryType:
			sum = new(Summary)
			dec := json.NewDecoder(bytes.NewReader(line))
			dec.DisallowUnknownFields()
			if err := dec.Decode(sum); err != nil {
				t.Fatalf("line %d: %v: %q", i+1, err, line)
			}
		default:
			t.Fatalf("line %d has type %q: %q", i+1, probe.Type, line)
		}
	}
	return recs, sum
}

func tail(b []byte) []byte {
	if len(b) > 200 {
		return b[len(b)-200:]
	}
	return b
}

// newSim returns a simulated network closed at the end of the test.
func newSim(t testing.TB, opts simnet.Options) *simnet.Net {
	t.Helper()
	s, err := simnet.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("closing the simnet: %v", err)
		}
	})
	return s
}
