package main

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

const sample = `goos: linux
goarch: amd64
pkg: github.com/btcpipe/btcpipe/benchmarks
cpu: Some CPU
BenchmarkDecode/corpus=ping/impl=decoder-2         	      12	   1000000 ns/op	 200.00 MB/s	   1100000 cpu-ns/op	      1000 msgs/op	   1000000 msgs/s	       0 B/op	       0 allocs/op
BenchmarkDecode/corpus=ping/impl=decoder-2         	      12	   1100000 ns/op	 190.00 MB/s	   1100000 cpu-ns/op	      1000 msgs/op	    900000 msgs/s	       0 B/op	       0 allocs/op
BenchmarkDecode/corpus=ping/impl=decoder-2         	      12	    900000 ns/op	 210.00 MB/s	   1100000 cpu-ns/op	      1000 msgs/op	   1100000 msgs/s	       0 B/op	       0 allocs/op
BenchmarkDecode/corpus=ping/impl=btcd-2            	       4	   4000000 ns/op	  50.00 MB/s	   5000000 cpu-ns/op	      1000 msgs/op	    250000 msgs/s	    9000 B/op	    9000 allocs/op
BenchmarkDecode/corpus=ping/impl=sha256d-2         	      27	    800000 ns/op	 250.00 MB/s	    800000 cpu-ns/op	      1000 msgs/op	   1250000 msgs/s	       0 B/op	       0 allocs/op
BenchmarkDecode/corpus=ping/impl=framer-2          	     100	    100000 ns/op	2000.00 MB/s	    100000 cpu-ns/op	      1000 msgs/op	  10000000 msgs/s	       3 B/op	       2 allocs/op
PASS
`

func parseSample(t *testing.T) *results {
	t.Helper()
	res := &results{index: map[[3]string]*row{}}
	if err := parse(strings.NewReader(sample), res); err != nil {
		t.Fatal(err)
	}
	return res
}

func TestParse(t *testing.T) {
	res := parseSample(t)
	if len(res.rows) != 4 || res.procs != "2" {
		t.Fatalf("%d rows, GOMAXPROCS %q; want 4 rows, 2", len(res.rows), res.procs)
	}
	if got, want := strings.Join(res.env, "; "), "goos: linux; goarch: amd64; cpu: Some CPU"; got != want {
		t.Errorf("env = %q, want %q", got, want)
	}
	d := res.get("ping", "decoder")
	if n := len(d.samples["ns/op"]); n != 3 {
		t.Fatalf("decoder has %d samples, want 3", n)
	}
	if got := d.msgsPerSec(); got != 1e6 {
		t.Errorf("median msgs/s = %v, want 1e6", got)
	}
	if got := d.spread("ns/op"); math.Abs(got-10) > 1e-9 {
		t.Errorf("spread = %v%%, want 10%%", got)
	}
	if got := d.cpuPerMsg(); got != 1100 {
		t.Errorf("CPU per message = %v ns, want 1100", got)
	}
	if got := res.get("ping", "btcd").allocsPerMsg(); got != 9 {
		t.Errorf("btcd allocs per message = %v, want 9", got)
	}
	if got := res.ratio("ping", "decoder", "btcd"); got != 4 {
		t.Errorf("decoder/btcd = %v, want 4", got)
	}
	if got := res.ratio("ping", "decoder", "sha256d"); got != 0.8 {
		t.Errorf("decoder/sha256d = %v, want 0.8", got)
	}
	if got := res.ratio("ping", "decoder", "pipeline-seq"); got != 0 {
		t.Errorf("ratio to a missing row = %v, want 0", got)
	}
}

func TestTargets(t *testing.T) {
	res := parseSample(t)
	verdict := map[string]target{}
	for _, tg := range res.targets() {
		if _, dup := verdict[tg.name]; !dup {
			verdict[tg.name] = tg
		}
	}
	allocs := verdict["0 allocs per frame in the framer and the verifier (every corpus)"]
	if !allocs.have || allocs.met || !strings.Contains(allocs.measured, "ping/framer") {
		t.Errorf("allocs target = %+v; want missed, naming ping/framer", allocs)
	}
	ping := verdict["ping ≥ 2.5 × btcd msgs/s (one goroutine)"]
	if !ping.have || !ping.met {
		t.Errorf("ping target = %+v; want met (4×)", ping)
	}
	block := verdict["block framer + verifier ≥ 0.95 × SHA-256d, one core"]
	if block.have {
		t.Errorf("block target = %+v; want not run", block)
	}
	var out bytes.Buffer
	res.targetTable(&out, true)
	for _, want := range []string{"| ping ≥ 2.5 × btcd msgs/s (one goroutine) | ping: decoder / btcd = 4.00× | met |", "| MISSED |", "| not run |"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("target table lacks %q:\n%s", want, out.String())
		}
	}
}
