package crawler

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/btcpipe/btcpipe/peer"
	"github.com/btcpipe/btcpipe/stages"
	"github.com/btcpipe/btcpipe/wire"
)

func TestAllowlistCheck(t *testing.T) {
	public := NewAllowlist(DefaultAllow(&wire.Mainnet))
	loop := NewAllowlist(DefaultAllow(&wire.Regtest))
	lab := NewAllowlist(mustPrefixes("0.0.0.0/0", "10.1.0.0/16", "127.0.0.1", "fd00:1::/32"))
	tests := []struct {
		name  string
		allow Allowlist
		addr  string
		ok    bool
		why   string // part of the reason when not ok
	}{
		{name: "public v4", allow: public, addr: "1.2.3.4:8333", ok: true},
		{name: "public v6", allow: public, addr: "[2001:4860:4860::8888]:8333", ok: true},
		{name: "mapped public", allow: public, addr: "[::ffff:1.2.3.4]:8333", ok: true},
		{name: "rfc1918", allow: public, addr: "10.1.2.3:8333", why: "bogon (10.0.0.0/8)"},
		{name: "192.168", allow: public, addr: "192.168.0.9:8333", why: "bogon"},
		{name: "cgnat", allow: public, addr: "100.64.1.1:8333", why: "bogon"},
		{name: "loopback on mainnet", allow: public, addr: "127.0.0.1:8333", why: "bogon (127.0.0.0/8)"},
		{name: "mapped loopback", allow: public, addr: "[::ffff:127.0.0.1]:8333", why: "bogon"},
		{name: "doc range", allow: public, addr: "203.0.113.5:8333", why: "bogon"},
		{name: "multicast", allow: public, addr: "224.0.0.1:8333", why: "bogon"},
		{name: "broadcast", allow: public, addr: "255.255.255.255:8333", why: "bogon"},
		{name: "zero", allow: public, addr: "0.0.0.0:8333", why: "bogon"},
		{name: "v6 loopback", allow: public, addr: "[::1]:8333", why: "bogon"},
		{name: "v6 ula", allow: public, addr: "[fd00::1]:8333", why: "bogon (fc00::/7)"},
		{name: "v6 link local", allow: public, addr: "[fe80::1]:8333", why: "bogon"},
		{name: "v6 doc", allow: public, addr: "[2001:db8::1]:8333", why: "bogon"},
		{name: "port 0", allow: public, addr: "1.2.3.4:0", why: "port 0"},
		{name: "regtest loopback", allow: loop, addr: "127.0.0.1:18444", ok: true},
		{name: "regtest other loopback", allow: loop, addr: "127.9.8.7:18444", ok: true},
		{name: "regtest v6 loopback", allow: loop, addr: "[::1]:18444", ok: true},
		{name: "regtest public", allow: loop, addr: "1.2.3.4:18444", why: "outside the allowlist"},
		{name: "regtest private", allow: loop, addr: "10.0.0.1:18444", why: "outside the allowlist"},
		{name: "lab named range", allow: lab, addr: "10.1.9.9:8333", ok: true},
		{name: "lab other private", allow: lab, addr: "10.2.0.1:8333", why: "bogon"},
		{name: "lab one loopback", allow: lab, addr: "127.0.0.1:8333", ok: true},
		{name: "lab other loopback", allow: lab, addr: "127.0.0.2:8333", why: "bogon"},
		{name: "lab ula part", allow: lab, addr: "[fd00:1::5]:8333", ok: true},
		{name: "lab public", allow: lab, addr: "8.8.4.4:8333", ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, why := tt.allow.Check(netip.MustParseAddrPort(tt.addr))
			if ok != tt.ok || !strings.Contains(why, tt.why) || (ok && why != "") {
				t.Errorf("Check(%s) on %v = %v, %q; want %v, %q", tt.addr, tt.allow, ok, why, tt.ok, tt.why)
			}
		})
	}
}

func TestParsePrefixes(t *testing.T) {
	got, err := ParsePrefixes([]string{" 127.0.0.0/8", "", "1.2.3.4", "::1", "10.1.2.3/16", "::ffff:10.0.0.0/104"})
	if err != nil {
		t.Fatal(err)
	}
	want := "127.0.0.0/8,1.2.3.4/32,::1/128,10.1.0.0/16,10.0.0.0/8"
	if s := NewAllowlist(got).String(); s != want {
		t.Errorf("got %s, want %s", s, want)
	}
	for _, bad := range []string{"127.0.0.0/33", "localhost", "1.2.3/8"} {
		if _, err := ParsePrefixes([]string{bad}); err == nil {
			t.Errorf("ParsePrefixes(%q) accepted it", bad)
		}
	}
}

func TestIsBogon(t *testing.T) {
	for addr, want := range map[string]bool{"8.8.8.8": false, "10.0.0.1": true, "::ffff:192.168.1.1": true, "2a00::1": false, "ff02::1": true} {
		if got := IsBogon(netip.MustParseAddr(addr)); got != want {
			t.Errorf("IsBogon(%s) = %v, want %v", addr, got, want)
		}
	}
}

// timeoutErr is a net.Error that timed out, as a dialer's deadline gives.
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Err: os.NewSyscallError(op, err)}
}

func TestClassifyDial(t *testing.T) {
	tests := []struct {
		err  error
		want Outcome
	}{
		{opErr("connect", syscall.ECONNREFUSED), Refused},
		{&net.OpError{Op: "dial", Err: timeoutErr{}}, Timeout},
		{context.DeadlineExceeded, Timeout},
		{fmt.Errorf("wrapped: %w", os.ErrDeadlineExceeded), Timeout},
		{opErr("connect", syscall.ECONNRESET), Reset},
		{opErr("connect", syscall.EHOSTUNREACH), Unreachable},
		{opErr("connect", syscall.ENETUNREACH), Unreachable},
		{errors.New("something else"), Unreachable},
	}
	for _, tt := range tests {
		if got := classifyDial(tt.err); got != tt.want {
			t.Errorf("classifyDial(%v) = %s, want %s", tt.err, got, tt.want)
		}
	}
}

func TestClassifySession(t *testing.T) {
	stage := func(stage string, err error) error { return &stages.Error{Peer: "p", Stage: stage, Err: err} }
	eof := stage(stages.StageReader, io.EOF)
	tests := []struct {
		name      string
		err       error
		handshook bool
		addrs     int
		want      Outcome
	}{
		{name: "closed after addresses", err: eof, handshook: true, addrs: 3, want: Reachable},
		{name: "closed before addresses", err: eof, handshook: true, want: ClosedAfterVerack},
		{name: "reset after handshake", err: stage(stages.StageReader, opErr("read", syscall.ECONNRESET)), handshook: true, want: ClosedAfterVerack},
		{name: "closed in handshake", err: eof, want: HandshakeFailed},
		{name: "bad magic", err: stage(stages.StageFramer, &wire.DecodeError{Err: wire.ErrBadMagic}), want: HandshakeFailed},
		{name: "bad version", err: stage(stages.StageDispatcher, &wire.DecodeError{Command: "version", Err: wire.ErrTruncated}), want: HandshakeFailed},
		{name: "handshake timeout", err: fmt.Errorf("%w after 1s", peer.ErrHandshakeTimeout), want: Timeout},
		{name: "handshake done at the deadline", err: fmt.Errorf("%w after 1s", peer.ErrHandshakeTimeout), handshook: true, want: Timeout},
		{name: "write timeout", err: stage(stages.StageWriter, &net.OpError{Op: "write", Err: timeoutErr{}}), want: Timeout},
		{name: "reset", err: stage(stages.StageReader, opErr("read", syscall.ECONNRESET)), want: Reset},
		{name: "broken pipe", err: stage(stages.StageWriter, opErr("write", syscall.EPIPE)), want: Reset},
		{name: "self", err: stage(stages.StageDispatcher, fmt.Errorf("%w (nonce 1)", peer.ErrSelfConnection)), want: Self},
		{name: "too old", err: stage(stages.StageDispatcher, fmt.Errorf("%w: 60002", peer.ErrVersionTooOld)), want: VersionTooOld},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classifySession(tt.err, tt.handshook, tt.addrs); got != tt.want {
				t.Errorf("classifySession(%v, %v, %d) = %s, want %s", tt.err, tt.handshook, tt.addrs, got, tt.want)
			}
		})
	}
}

func TestErrorText(t *testing.T) {
	long := errors.New(strings.Repeat("x", 1000))
	if got := errorText(long); len(got) != maxErrorLen || !strings.HasSuffix(got, "...") {
		t.Errorf("errorText of 1000 bytes: %d bytes %q…", len(got), got[:10])
	}
	if got := errorText(errors.New("short")); got != "short" {
		t.Errorf("errorText(short) = %q", got)
	}
}

// TestLimiter checks the slots a limiter hands out with a fake clock.
func TestLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	var slept []time.Duration
	l := newLimiter(100) // 10 ms apart
	l.now = func() time.Time { return now }
	l.sleep = func(ctx context.Context, d time.Duration) error {
		slept = append(slept, d)
		return nil
	}
	ctx := context.Background()
	for range 5 {
		if err := l.wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	want := []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 30 * time.Millisecond, 40 * time.Millisecond}
	if fmt.Sprint(slept) != fmt.Sprint(want) {
		t.Errorf("slept %v, want %v", slept, want)
	}
	// After an idle second the next slot is now: no burst is saved up.
	now = now.Add(time.Second)
	slept = nil
	_ = l.wait(ctx)
	_ = l.wait(ctx)
	if fmt.Sprint(slept) != fmt.Sprint([]time.Duration{10 * time.Millisecond}) {
		t.Errorf("after idling slept %v, want [10ms]", slept)
	}
	// Unlimited never sleeps; a cancelled context is an error.
	u := newLimiter(0)
	u.sleep = func(context.Context, time.Duration) error { t.Error("unlimited limiter slept"); return nil }
	if err := u.wait(ctx); err != nil {
		t.Error(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := l.wait(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("wait on a cancelled context: %v", err)
	}
	// The real sleep ends with its context.
	if err := sleepCtx(cctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("sleepCtx: %v", err)
	}
}

func TestRecordJSON(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	failed := Record{Type: RecordType, Addr: "1.2.3.4:8333", Network: "ipv4", Source: "seed", Outcome: Refused, Error: "refused", Time: at}
	b, _ := json.Marshal(&failed)
	want := `{"type":"node","addr":"1.2.3.4:8333","network":"ipv4","source":"seed","outcome":"refused","error":"refused","time":"2025-01-02T03:04:05Z"}`
	if string(b) != want {
		t.Errorf("failed record:\n%s\nwant\n%s", b, want)
	}
	ok := failed
	ok.Outcome, ok.Error, ok.ConnectMs = Reachable, "", 1.5
	ok.Handshake = &Handshake{Protocol: 70016, Services: []string{}, UserAgent: "/x/", HandshakeMs: 2, AddrsReturned: 0, Ended: EndedQuiet}
	b, _ = json.Marshal(&ok)
	want = `{"type":"node","addr":"1.2.3.4:8333","network":"ipv4","source":"seed","outcome":"reachable","time":"2025-01-02T03:04:05Z","connect_ms":1.5,` +
		`"protocol":70016,"services":[],"service_bits":0,"user_agent":"/x/","start_height":0,"relay":false,"handshake_ms":2,"addrs_returned":0,"addrs_new":0,"ended":"quiet"}`
	if string(b) != want {
		t.Errorf("reachable record:\n%s\nwant\n%s", b, want)
	}
	var back Record
	if err := json.Unmarshal(b, &back); err != nil || back.Handshake == nil || back.StartHeight != 0 || back.UserAgent != "/x/" {
		t.Errorf("round trip: %+v, %v", back, err)
	}
}

func TestSummaryAdd(t *testing.T) {
	var s Summary // the zero value works
	h := func(ua string, proto int32, svc ...string) *Handshake {
		return &Handshake{UserAgent: ua, Protocol: proto, Services: svc}
	}
	for _, r := range []Record{
		{Network: "ipv4", Outcome: Reachable, Handshake: h("/a/", 70016, "NODE_NETWORK", "NODE_WITNESS")},
		{Network: "ipv4", Outcome: Reachable, Handshake: h("/a/", 70015, "NODE_NETWORK")},
		{Network: "ipv6", Outcome: Reachable, Handshake: h("/b/", 70016)},
		{Network: "ipv4", Outcome: ClosedAfterVerack, Handshake: h("/c/", 70016, "NODE_NETWORK")},
		{Network: "torv3", Outcome: NotDialled},
		{Network: "ipv4", Outcome: Refused},
	} {
		s.Add(&r)
	}
	check := func(name string, got, want any) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	check("type", s.Type, SummaryType)
	check("records, tried", []int{s.Records, s.Tried}, []int{6, 5})
	check("by network", s.ByNetwork, map[string]int{"ipv4": 4, "ipv6": 1, "torv3": 1})
	check("by outcome", s.ByOutcome, map[Outcome]int{Reachable: 3, ClosedAfterVerack: 1, NotDialled: 1, Refused: 1})
	check("by user agent", s.ByUserAgent, map[string]int{"/a/": 2, "/b/": 1})
	check("by protocol", s.ByProtocol, map[string]int{"70015": 1, "70016": 2})
	check("by service", s.ByService, map[string]int{"NODE_NETWORK": 2, "NODE_WITNESS": 1})
	check("by service set", s.ByServiceSet, map[string]int{"NODE_NETWORK|NODE_WITNESS": 1, "NODE_NETWORK": 1, "NONE": 1})
}

// writeLog records every Write call.
type writeLog struct{ calls [][]byte }

func (w *writeLog) Write(b []byte) (int, error) {
	w.calls = append(w.calls, bytes.Clone(b))
	return len(b), nil
}

// TestJSONLinesOneWritePerLine: every line is exactly one Write call.
func TestJSONLinesOneWritePerLine(t *testing.T) {
	var w writeLog
	j := NewJSONLines(&w)
	r := Record{Type: RecordType, Addr: "[2001:db8::1]:8333", Outcome: Reachable, Handshake: &Handshake{UserAgent: "/<&>é\x00/"}}
	for range 3 {
		if err := j.Record(&r); err != nil {
			t.Fatal(err)
		}
	}
	s := NewSummary("regtest")
	if err := j.Summary(&s); err != nil {
		t.Fatal(err)
	}
	if len(w.calls) != 4 {
		t.Fatalf("%d writes for 4 lines", len(w.calls))
	}
	for i, c := range w.calls {
		if bytes.Count(c, []byte("\n")) != 1 || c[len(c)-1] != '\n' || !json.Valid(c) {
			t.Errorf("write %d is not one JSON line: %q", i, c)
		}
	}
	if !bytes.Contains(w.calls[0], []byte(`"/<&>é\u0000/"`)) {
		t.Errorf("user agent not written as is: %s", w.calls[0])
	}
	// A line over MaxLine is refused, not split.
	r.Handshake.Services = []string{strings.Repeat("S", MaxLine)}
	if err := j.Record(&r); err == nil || len(w.calls) != 4 {
		t.Errorf("an oversize line: err %v, %d writes", err, len(w.calls))
	}
	// A failing writer's error comes back.
	j = NewJSONLines(errWriter{})
	if err := j.Record(&Record{}); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("write error: %v, want ENOSPC", err)
	}
}

type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, syscall.ENOSPC }
