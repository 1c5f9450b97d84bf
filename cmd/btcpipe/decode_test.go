package main

import (
	"bytes"
	binenc "encoding/binary"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	btcdwire "github.com/btcsuite/btcd/wire/v2"
	"go.uber.org/goleak"

	"github.com/btcpipe/btcpipe/wire"
)

// recording is a stream btcd v0.26.2 sent to `btcpipe node` on regtest over
// two sessions (go run ./benchmarks/record): the first asked for addrv2, the
// second did not; btcpipe pinged every 500 ms. Its frames, by offset:
//
//	   0 version (137)   137 sendaddrv2   161 verack   185 addrv2 (1,221: 92 entries)
//	1406 pong × 10 (32 each)
//	1726 version (137)  1863 sendaddrv2  1887 verack  1911 addr (2,785: 92 entries)
//	4696 pong × 11
const recording = "testdata/btcd-regtest.rec"

// Offsets of frames in recording.
const (
	offAddrV2   = 185
	offPongs    = 1406
	offVersion2 = 1726
	recordSize  = 5048
)

// counts is one row of decode's table: frames, bytes, decoded, bad
// checksum, bad payload.
type counts [5]int64

// wantRecording is decode's table for the whole recording.
var wantRecording = map[string]counts{
	"version":    {2, 274, 2, 0, 0},
	"sendaddrv2": {2, 48, 2, 0, 0},
	"verack":     {2, 48, 2, 0, 0},
	"addrv2":     {1, 1221, 1, 0, 0},
	"addr":       {1, 2785, 1, 0, 0},
	"pong":       {21, 672, 21, 0, 0},
	"total":      {29, 5048, 29, 0, 0},
}

// decodeResult is what one `btcpipe decode` run produced.
type decodeResult struct {
	code           int
	rows           map[string]counts
	stdout, stderr string
}

// runDecodeCmd runs `btcpipe decode args...` with the given environment.
func runDecodeCmd(t *testing.T, env map[string]string, args ...string) decodeResult {
	t.Helper()
	if _, ok := env["BTCPIPE_NETWORK"]; !ok {
		t.Setenv("BTCPIPE_NETWORK", "regtest")
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	var stdout, stderr bytes.Buffer
	code := run(append([]string{"decode"}, args...), &stdout, &stderr)
	r := decodeResult{code: code, stdout: stdout.String(), stderr: stderr.String()}
	r.rows = parseTable(t, r.stdout)
	return r
}

// parseTable reads the rows of decode's table, the total included.
func parseTable(t *testing.T, out string) map[string]counts {
	t.Helper()
	rows := map[string]counts{}
	in := false
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		switch {
		case len(f) > 0 && f[0] == "command":
			in = true
		case in && len(f) == 6:
			var c counts
			for i := range c {
				n, err := strconv.ParseInt(f[i+1], 10, 64)
				if err != nil {
					t.Fatalf("bad row %q in\n%s", line, out)
				}
				c[i] = n
			}
			rows[f[0]] = c
			if f[0] == "total" {
				return rows
			}
		case in:
			t.Fatalf("unexpected line %q in\n%s", line, out)
		}
	}
	if !in {
		t.Fatalf("no table in\n%s", out)
	}
	return rows
}

func readRecording(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(recording)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != recordSize {
		t.Fatalf("%s is %d bytes, want %d (re-recorded? update the expectations)", recording, len(b), recordSize)
	}
	return b
}

func writeTemp(t *testing.T, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "stream.rec")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func checkRows(t *testing.T, r decodeResult, want map[string]counts) {
	t.Helper()
	if !maps.Equal(r.rows, want) {
		t.Errorf("table:\n got %v\nwant %v\nstdout:\n%s", r.rows, want, r.stdout)
	}
}

// withTotal returns rows with a "total" row added.
func withTotal(rows map[string]counts) map[string]counts {
	var total counts
	for _, c := range rows {
		for i := range total {
			total[i] += c[i]
		}
	}
	out := maps.Clone(rows)
	out["total"] = total
	return out
}

// TestDecodeRecording decodes the recorded btcd stream with both verifiers
// and checks the exact table, and checks it against btcd's own decoder.
func TestDecodeRecording(t *testing.T) {
	defer goleak.VerifyNone(t)
	readRecording(t)
	for _, verifier := range []string{"sequential", "parallel"} {
		t.Run(verifier, func(t *testing.T) {
			r := runDecodeCmd(t, map[string]string{"BTCPIPE_VERIFIER": verifier}, recording)
			if r.code != exitOK {
				t.Fatalf("exit %d, want %d; stderr: %s", r.code, exitOK, r.stderr)
			}
			checkRows(t, r, wantRecording)
			if !strings.Contains(r.stdout, "verifier "+verifier) || !strings.Contains(r.stdout, "read 5048 bytes in ") ||
				!strings.Contains(r.stdout, " MB/s, ") || !strings.Contains(r.stdout, " msgs/s") {
				t.Errorf("stdout lacks the header or the throughput line:\n%s", r.stdout)
			}
			if r.stderr != "" {
				t.Errorf("stderr = %q, want nothing", r.stderr)
			}
		})
	}
}

// TestRecordingMatchesBtcd reads the recording with btcd's wire.ReadMessage,
// an independent decoder, and checks that it sees the frames decode counts.
func TestRecordingMatchesBtcd(t *testing.T) {
	r := bytes.NewReader(readRecording(t))
	got := map[string]counts{}
	for r.Len() > 0 {
		before := r.Len()
		msg, _, err := btcdwire.ReadMessage(r, btcdwire.AddrV2Version, btcdwire.TestNet)
		if err != nil {
			t.Fatalf("btcd: at offset %d: %v", recordSize-before, err)
		}
		c := got[msg.Command()]
		c[0]++
		c[1] += int64(before - r.Len())
		c[2]++
		got[msg.Command()] = c
		if a, ok := msg.(*btcdwire.MsgAddr); ok && len(a.AddrList) != 92 {
			t.Errorf("btcd: addr has %d entries, want 92", len(a.AddrList))
		}
		if a, ok := msg.(*btcdwire.MsgAddrV2); ok && len(a.AddrList) != 92 {
			t.Errorf("btcd: addrv2 has %d entries, want 92", len(a.AddrList))
		}
	}
	if want := withTotal(withoutTotal(wantRecording)); !maps.Equal(withTotal(got), want) {
		t.Errorf("btcd sees\n %v\nwant %v", withTotal(got), want)
	}
}

func withoutTotal(rows map[string]counts) map[string]counts {
	out := maps.Clone(rows)
	delete(out, "total")
	return out
}

func TestDecodeStdin(t *testing.T) {
	defer goleak.VerifyNone(t)
	old := stdin
	t.Cleanup(func() { stdin = old })
	stdin = bytes.NewReader(readRecording(t))
	r := runDecodeCmd(t, nil, "-")
	if r.code != exitOK {
		t.Fatalf("exit %d; stderr: %s", r.code, r.stderr)
	}
	checkRows(t, r, wantRecording)
	if !strings.HasPrefix(r.stdout, "stdin: regtest stream") {
		t.Errorf("stdout does not name stdin:\n%s", r.stdout)
	}
}

// TestDecodeDamaged checks that a damaged stream gives the counts up to the
// damage, a message saying what is wrong, and exit status 1.
func TestDecodeDamaged(t *testing.T) {
	defer goleak.VerifyNone(t)
	rec := readRecording(t)
	firstSession := map[string]counts{ // the frames before offVersion2
		"version":    {1, 137, 1, 0, 0},
		"sendaddrv2": {1, 24, 1, 0, 0},
		"verack":     {1, 24, 1, 0, 0},
		"addrv2":     {1, 1221, 1, 0, 0},
		"pong":       {10, 320, 10, 0, 0},
	}
	handshake := map[string]counts{ // the frames before offAddrV2
		"version":    {1, 137, 1, 0, 0},
		"sendaddrv2": {1, 24, 1, 0, 0},
		"verack":     {1, 24, 1, 0, 0},
	}
	badPong := wire.AppendFrame(nil, wire.Regtest.Magic, wire.CmdPong, make([]byte, 7)) // a nonce cut short
	tests := []struct {
		name     string
		stream   func() []byte
		env      map[string]string
		want     map[string]counts
		stderr   []string // each must appear
		verifier string
	}{
		{
			name:   "truncated in a payload",
			stream: func() []byte { return rec[:offAddrV2+700] },
			want:   withTotal(handshake),
			stderr: []string{"the stream is truncated", "framer: addrv2: stream ended mid-frame (700 bytes pending)", "after 185 bytes of whole frames, 885 bytes read"},
		},
		{
			name:   "truncated in a header",
			stream: func() []byte { return rec[:offVersion2+10] },
			want:   withTotal(firstSession),
			stderr: []string{"the stream is truncated", "framer: stream ended mid-frame (10 bytes pending)"},
		},
		{
			name: "bad checksum",
			stream: func() []byte {
				b := bytes.Clone(rec)
				b[offAddrV2+wire.HeaderSize-1] ^= 0x40 // last checksum byte
				return b
			},
			want: func() map[string]counts {
				w := maps.Clone(wantRecording)
				w["addrv2"] = counts{1, 1221, 0, 1, 0}
				w["total"] = counts{29, 5048, 28, 1, 0}
				return w
			}(),
			stderr: []string{"1 frame(s) failed their checksum and were dropped"},
		},
		{
			name: "bad checksum, parallel verifier",
			stream: func() []byte {
				b := bytes.Clone(rec)
				b[offPongs+wire.HeaderSize] ^= 0x01 // first nonce byte of the first pong
				return b
			},
			env: map[string]string{"BTCPIPE_VERIFIER": "parallel"},
			want: func() map[string]counts {
				w := maps.Clone(wantRecording)
				w["pong"] = counts{21, 672, 20, 1, 0}
				w["total"] = counts{29, 5048, 28, 1, 0}
				return w
			}(),
			stderr: []string{"1 frame(s) failed their checksum and were dropped"},
		},
		{
			name:   "payload that does not decode",
			stream: func() []byte { return append(bytes.Clone(rec), badPong...) },
			want: func() map[string]counts {
				w := maps.Clone(wantRecording)
				w["pong"] = counts{22, 672 + 31, 21, 0, 1}
				w["total"] = counts{30, 5048 + 31, 29, 0, 1}
				return w
			}(),
			stderr: []string{"1 payload(s) did not decode"},
		},
		{
			name: "bad magic mid-stream",
			stream: func() []byte {
				b := bytes.Clone(rec)
				b[offVersion2] ^= 0xff
				return b
			},
			want:   withTotal(firstSession),
			stderr: []string{"corrupt or from another network", "framer: wire: at offset 0: bad magic"},
		},
		{
			name: "oversize length",
			stream: func() []byte {
				b := bytes.Clone(rec)
				binenc.LittleEndian.PutUint32(b[offVersion2+16:], wire.MaxPayload+1)
				return b
			},
			want:   withTotal(firstSession),
			stderr: []string{"the stream is corrupt", "framer: version: wire: version at offset 16: payload too large"},
		},
		{
			name:   "another network",
			stream: func() []byte { return rec },
			env:    map[string]string{"BTCPIPE_NETWORK": "mainnet"},
			want:   map[string]counts{"total": {}},
			stderr: []string{"corrupt or from another network", "bad magic"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runDecodeCmd(t, tt.env, writeTemp(t, tt.stream()))
			if r.code != exitFailed {
				t.Errorf("exit %d, want %d", r.code, exitFailed)
			}
			checkRows(t, r, tt.want)
			for _, s := range tt.stderr {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, r.stderr)
				}
			}
		})
	}
}

func TestDecodeUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"a", "b"}} {
		var stdout, stderr bytes.Buffer
		if code := run(append([]string{"decode"}, args...), &stdout, &stderr); code != exitUsage {
			t.Errorf("decode %q: exit %d, want %d", args, code, exitUsage)
		}
		if !strings.Contains(stderr.String(), "decode takes one argument") {
			t.Errorf("decode %q: stderr = %q", args, stderr.String())
		}
	}
	var stdout, stderr bytes.Buffer
	missing := filepath.Join(t.TempDir(), "missing.rec")
	if code := run([]string{"decode", missing}, &stdout, &stderr); code != exitFailed {
		t.Errorf("missing file: exit %d, want %d", code, exitFailed)
	}
	if !strings.Contains(stderr.String(), "no such file") {
		t.Errorf("missing file: stderr = %q", stderr.String())
	}
}

// TestDecodeLargeStream pushes a stream much larger than one read through
// decode, so frames straddle reads and slabs.
func TestDecodeLargeStream(t *testing.T) {
	defer goleak.VerifyNone(t)
	rec := readRecording(t)
	const copies = 400 // 2 MB
	var b bytes.Buffer
	for range copies {
		b.Write(rec)
	}
	// The smallest read buffer: 2 MB take 32 reads at least.
	r := runDecodeCmd(t, map[string]string{"BTCPIPE_READ_BUFFER": "65536"}, writeTemp(t, b.Bytes()))
	if r.code != exitOK {
		t.Fatalf("exit %d; stderr: %s", r.code, r.stderr)
	}
	want := map[string]counts{}
	for k, c := range wantRecording {
		for i := range c {
			c[i] *= copies
		}
		want[k] = c
	}
	checkRows(t, r, want)
}

// TestDecodeStdinPipeStopsOnSIGINT: `btcpipe decode -` reading a pipe that
// stays open (nothing more comes, and no end either) stops on the first
// SIGINT, with the counts of what it read.
func TestDecodeStdinPipeStopsOnSIGINT(t *testing.T) {
	bin := binary(t)
	cmd := exec.Command(bin, "decode", "-")
	cmd.Env = cleanEnv("BTCPIPE_NETWORK=regtest")
	w, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(readRecording(t)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // read and counted; now it waits for more
	start := time.Now()
	cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("decode - did not stop within 5 s of SIGINT; stderr: %s", stderr.String())
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("decode - took %s to stop after SIGINT", took)
	}
	if !strings.Contains(stdout.String(), "version") {
		t.Errorf("no counts printed after SIGINT:\nstdout: %s\nstderr: %s", stdout.String(), stderr.String())
	}
}
