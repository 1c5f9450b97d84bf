// Command report turns the output of the BenchmarkDecode benchmarks
// (go test -bench, any -count) into the table `make bench` prints: for every
// corpus and implementation the median MB/s and msgs/s, the allocations per
// message, the spread of the samples, and the ratios to btcd's
// wire.ReadMessage and to SHA-256d over the same bytes, and the CPU time per
// message (every goroutine's and the garbage collector's: it is what a
// message costs however busy the machine); then the targets, each
// met or missed.
//
//	go run ./benchmarks/report [-md] [FILE ...]   (stdin without FILE)
//
// The ratios are of msgs/s, which for the same corpus is the ratio of MB/s
// too. The spread is benchstat's: the largest distance of a sample's ns/op
// from the median, as a percentage of the median.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Implementation names, as the benchmarks call them.
const (
	implFramer      = "framer"
	implFramerCopy  = "framer-copy"
	implVerifier    = "verifier"
	implDecoder     = "decoder"
	implPipelineSeq = "pipeline-seq"
	implPipelinePar = "pipeline-par"
	implBtcd        = "btcd"
	implSHA         = "sha256d"

	// BenchmarkDecodeV2's (BIP324 packets).
	implV2Decoder = "v2-decoder"
	implV2Btcd    = "v2-btcd"
	implV2AEAD    = "chacha20poly1305"
)

// row is one (corpus, impl) benchmark with all its samples.
type row struct {
	bench        string // "Decode", "DecodeV2" or "Write"
	corpus, impl string
	samples      map[string][]float64 // unit → values
}

func (r *row) median(unit string) float64 {
	v := slices.Clone(r.samples[unit])
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// spread is the largest distance of a sample from the median, in percent.
func (r *row) spread(unit string) float64 {
	m := r.median(unit)
	if m == 0 {
		return 0
	}
	d := 0.0
	for _, x := range r.samples[unit] {
		d = max(d, abs(x-m))
	}
	return 100 * d / m
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func (r *row) msgsPerSec() float64 { return r.median("msgs/s") }

// cpuPerMsg is the CPU time per message, every goroutine's (and the
// garbage collector's) included.
func (r *row) cpuPerMsg() float64 {
	n := r.median("msgs/op")
	if n == 0 {
		return 0
	}
	return r.median("cpu-ns/op") / n
}

func (r *row) allocsPerMsg() float64 {
	n := r.median("msgs/op")
	if n == 0 {
		return 0
	}
	return r.median("allocs/op") / n
}

// results holds everything parsed, in first-seen order.
type results struct {
	rows  []*row
	index map[[3]string]*row
	env   []string // goos, goarch, pkg, cpu lines
	procs string
}

var benchLine = regexp.MustCompile(`^Benchmark(Decode|DecodeV2|Write)/corpus=([^/\s]+)/impl=([^\s]+?)(?:-(\d+))?\s+\d+\s+(.*)$`)

func parse(r io.Reader, res *results) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for _, p := range []string{"goos:", "goarch:", "cpu:"} {
			if strings.HasPrefix(line, p) && !slices.Contains(res.env, line) {
				res.env = append(res.env, line)
			}
		}
		m := benchLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		key := [3]string{m[1], m[2], m[3]}
		rw := res.index[key]
		if rw == nil {
			rw = &row{bench: m[1], corpus: m[2], impl: m[3], samples: map[string][]float64{}}
			res.index[key] = rw
			res.rows = append(res.rows, rw)
		}
		if m[4] != "" {
			res.procs = m[4]
		}
		f := strings.Fields(m[5])
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return fmt.Errorf("bad value %q in %q", f[i], line)
			}
			rw.samples[f[i+1]] = append(rw.samples[f[i+1]], v)
		}
	}
	return sc.Err()
}

func (res *results) get(corpus, impl string) *row {
	return res.index[[3]string{"Decode", corpus, impl}]
}

// ratio returns a's msgs/s over b's, or 0 when either is missing.
func (res *results) ratio(corpus, a, b string) float64 { return res.ratioIn("Decode", corpus, a, b) }

// ratioIn is ratio for the rows of benchmark bench.
func (res *results) ratioIn(bench, corpus, a, b string) float64 {
	ra, rb := res.index[[3]string{bench, corpus, a}], res.index[[3]string{bench, corpus, b}]
	if ra == nil || rb == nil || rb.msgsPerSec() == 0 {
		return 0
	}
	return ra.msgsPerSec() / rb.msgsPerSec()
}

func fmtRatio(x float64) string {
	if x == 0 {
		return "–"
	}
	if x >= 100 {
		return fmt.Sprintf("%.0f×", x)
	}
	return fmt.Sprintf("%.2f×", x)
}

func fmtRate(x float64) string {
	switch {
	case x >= 1e9:
		return fmt.Sprintf("%.1fG", x/1e9)
	case x >= 1e6:
		return fmt.Sprintf("%.2fM", x/1e6)
	case x >= 1e3:
		return fmt.Sprintf("%.1fk", x/1e3)
	}
	return fmt.Sprintf("%.1f", x)
}

func fmtMBs(x float64) string {
	if x >= 10_000 {
		return fmt.Sprintf("%.0f", x)
	}
	return fmt.Sprintf("%.1f", x)
}

func fmtDuration(ns float64) string {
	switch {
	case ns == 0:
		return "–"
	case ns >= 1e6:
		return fmt.Sprintf("%.2fms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.1fµs", ns/1e3)
	}
	return fmt.Sprintf("%.0fns", ns)
}

func fmtAllocs(x float64) string {
	switch {
	case x == 0:
		return "0"
	case x < 0.01:
		return fmt.Sprintf("%.4f", x)
	case x < 10:
		return fmt.Sprintf("%.2f", x)
	}
	return fmt.Sprintf("%.0f", x)
}

// anchor is an implementation the others are compared with, and the
// heading of the column of those ratios.
type anchor struct{ impl, head string }

// decodeTable writes the rows of one decoding benchmark (Decode, DecodeV2)
// with their ratios to two anchors: the btcd implementation and the limit.
// It writes nothing when there are no such rows.
func (res *results) decodeTable(w io.Writer, md bool, bench, corpusHead string, a, b anchor) {
	head := []string{corpusHead, "impl", "MB/s", "msgs/s", "allocs/msg", "CPU/msg", "±", a.head, b.head}
	var lines [][]string
	for _, r := range res.rows {
		if r.bench != bench {
			continue
		}
		lines = append(lines, []string{
			r.corpus, r.impl,
			fmtMBs(r.median("MB/s")),
			fmtRate(r.msgsPerSec()),
			fmtAllocs(r.allocsPerMsg()),
			fmtDuration(r.cpuPerMsg()),
			fmt.Sprintf("%.0f%%", r.spread("ns/op")),
			fmtRatio(res.ratioIn(bench, r.corpus, r.impl, a.impl)),
			fmtRatio(res.ratioIn(bench, r.corpus, r.impl, b.impl)),
		})
	}
	if len(lines) == 0 {
		return
	}
	writeTable(w, md, head, lines)
}

// table writes the main table: BenchmarkDecode, against btcd's wire and
// SHA-256d.
func (res *results) table(w io.Writer, md bool) {
	res.decodeTable(w, md, "Decode", "corpus", anchor{implBtcd, "ours/btcd"}, anchor{implSHA, "ours/SHA-256d"})
}

// v2Table writes the table of BenchmarkDecodeV2: our v2 stages, btcd's
// v2transport and raw ChaCha20-Poly1305 over the same packets.
func (res *results) v2Table(w io.Writer, md bool) {
	if !res.has("DecodeV2") {
		return
	}
	fmt.Fprintln(w)
	res.decodeTable(w, md, "DecodeV2", "v2 corpus", anchor{implV2Btcd, "ours/btcd-v2"}, anchor{implV2AEAD, "ours/ChaCha20-Poly1305"})
}

// has reports whether any row is of benchmark bench.
func (res *results) has(bench string) bool {
	for _, r := range res.rows {
		if r.bench == bench {
			return true
		}
	}
	return false
}

// writerTable writes the table of BenchmarkWrite: the writers side by side,
// with the system calls each makes per message. It writes nothing when
// there are no such rows.
func (res *results) writerTable(w io.Writer, md bool) {
	head := []string{"burst", "writer", "MB/s", "time/msg", "writes/msg", "allocs/msg", "±"}
	var lines [][]string
	if !res.has("Write") {
		return
	}
	for _, r := range res.rows {
		if r.bench != "Write" {
			continue
		}
		n := r.median("msgs/op")
		lines = append(lines, []string{
			r.corpus, r.impl,
			fmtMBs(r.median("MB/s")),
			fmtDuration(r.median("ns/op") / max(n, 1)),
			fmt.Sprintf("%.4f", r.median("writes/msg")),
			fmtAllocs(r.allocsPerMsg()),
			fmt.Sprintf("%.0f%%", r.spread("ns/op")),
		})
	}
	fmt.Fprintln(w)
	writeTable(w, md, head, lines)
}

func writeTable(w io.Writer, md bool, head []string, lines [][]string) {
	if md {
		fmt.Fprintf(w, "| %s |\n", strings.Join(head, " | "))
		seps := make([]string, len(head))
		for i := range seps {
			seps[i] = "---"
			if i >= 2 {
				seps[i] = "---:"
			}
		}
		fmt.Fprintf(w, "|%s|\n", strings.Join(seps, "|"))
		for _, l := range lines {
			fmt.Fprintf(w, "| %s |\n", strings.Join(l, " | "))
		}
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, l := range lines {
		fmt.Fprintln(tw, strings.Join(l, "\t"))
	}
	tw.Flush()
}

// target is one goal of the issue.
type target struct {
	name     string
	measured string
	met      bool
	have     bool
}

func (res *results) targets() []target {
	var out []target

	// 0 allocations per frame in the framer and the verifier.
	worst, where, rows := 0.0, "", 0
	for _, r := range res.rows {
		if r.bench == "Decode" && (r.impl == implFramer || r.impl == implFramerCopy || r.impl == implVerifier) {
			rows++
			if a := r.median("allocs/op"); a > worst {
				worst, where = a, r.corpus+"/"+r.impl
			}
		}
	}
	measured := fmt.Sprintf("0 allocs/op in all %d framer (slab, copy) and verifier rows", rows)
	if worst > 0 {
		measured = fmt.Sprintf("up to %s allocs/op (%s)", fmtAllocs(worst), where)
	}
	out = append(out, target{
		name:     "0 allocs per frame in the framer and the verifier (every corpus)",
		measured: measured,
		met:      worst == 0, have: rows > 0,
	})

	cmp := func(name, corpus, a, b string, goal float64) {
		x := res.ratio(corpus, a, b)
		out = append(out, target{
			name:     name,
			measured: fmt.Sprintf("%s: %s / %s = %s", corpus, a, b, fmtRatio(x)),
			met:      x >= goal, have: x != 0,
		})
	}
	cmp("ping ≥ 2.5 × btcd msgs/s (one goroutine)", "ping", implDecoder, implBtcd, 2.5)
	cmp("ping ≥ 2.5 × btcd msgs/s (whole pipeline)", "ping", implPipelineSeq, implBtcd, 2.5)
	cmp("addr × 1,000 decode ≥ 4 × btcd (one goroutine)", "addr", implDecoder, implBtcd, 4)
	cmp("addr × 1,000 decode ≥ 4 × btcd (whole pipeline)", "addr", implPipelineSeq, implBtcd, 4)
	cmp("block framer + verifier ≥ 0.95 × SHA-256d, one core", "block", implVerifier, implSHA, 0.95)
	cmp("addrv2 × 1,000 decode ≥ 0.7 × SHA-256d (one goroutine)", "addrv2", implDecoder, implSHA, 0.7)
	cmp("parallel verifier ≥ 1.6 × sequential, 2 cores, large messages", "block", implPipelinePar, implPipelineSeq, 1.6)
	cmp("parallel verifier ≥ 1.6 × sequential, 2 cores, large messages", "tx10k", implPipelinePar, implPipelineSeq, 1.6)
	cmp("pipeline on mix ≥ 0.8 × framer + verifier in one goroutine", "mix", implPipelineSeq, implVerifier, 0.8)
	cmp("pipeline on mix ≥ 0.8 × framer + verifier in one goroutine", "mix", implPipelinePar, implVerifier, 0.8)
	// What zero-copy buys: the slab framer against the copying baseline.
	cmp("zero-copy framer ≥ 1.1 × copying framer on small frames", "ping", implFramer, implFramerCopy, 1.1)
	cmp("zero-copy framer ≥ 10 × copying framer on blocks", "block", implFramer, implFramerCopy, 10)

	// BIP324 (BenchmarkDecodeV2).
	v2worst, v2where, v2rows := 0.0, "", 0
	for _, r := range res.rows {
		if r.bench == "DecodeV2" && r.impl == implV2Decoder {
			v2rows++
			if a := r.median("allocs/op"); a > v2worst {
				v2worst, v2where = a, r.corpus
			}
		}
	}
	measured = fmt.Sprintf("0 allocs/op in all %d v2-decoder rows", v2rows)
	if v2worst > 0 {
		measured = fmt.Sprintf("up to %s allocs/op (%s)", fmtAllocs(v2worst), v2where)
	}
	out = append(out, target{name: "v2: 0 allocs per packet (every v2 corpus)", measured: measured, met: v2worst == 0, have: v2rows > 0})
	// The v2 aims are judged on CPU time per message (every goroutine's):
	// on a machine shared with other work, wall-clock msgs/s swings by tens
	// of percent between samples, CPU time much less. msgs/s is shown too.
	cmpV2 := func(name, corpus, a, b string, goal float64) {
		x := res.ratioIn("DecodeV2", corpus, a, b)
		ra, rb := res.index[[3]string{"DecodeV2", corpus, a}], res.index[[3]string{"DecodeV2", corpus, b}]
		cpu := 0.0
		if ra != nil && rb != nil && ra.cpuPerMsg() > 0 {
			cpu = rb.cpuPerMsg() / ra.cpuPerMsg()
		}
		out = append(out, target{
			name:     name,
			measured: fmt.Sprintf("%s: %s / %s = %s by CPU/msg (%s by msgs/s)", corpus, a, b, fmtRatio(cpu), fmtRatio(x)),
			met:      cpu >= goal, have: cpu != 0,
		})
	}
	cmpV2("v2 block ≥ 0.9 × ChaCha20-Poly1305 Open", "block", implV2Decoder, implV2AEAD, 0.9)
	cmpV2("v2 mix ≥ 3 × btcd v2transport", "mix", implV2Decoder, implV2Btcd, 3)
	return out
}

func (res *results) targetTable(w io.Writer, md bool) {
	var lines [][]string
	for _, t := range res.targets() {
		verdict := "MISSED"
		switch {
		case !t.have:
			verdict, t.measured = "not run", "–"
		case t.met:
			verdict = "met"
		}
		lines = append(lines, []string{t.name, t.measured, verdict})
	}
	writeTable(w, md, []string{"target", "measured", ""}, lines)
}

func main() {
	md := flag.Bool("md", false, "write Markdown tables")
	flag.Parse()
	res := &results{index: map[[3]string]*row{}}
	if flag.NArg() == 0 {
		if err := parse(os.Stdin, res); err != nil {
			fail(err)
		}
	}
	for _, name := range flag.Args() {
		f, err := os.Open(name)
		if err != nil {
			fail(err)
		}
		err = parse(f, res)
		f.Close()
		if err != nil {
			fail(fmt.Errorf("%s: %w", name, err))
		}
	}
	if len(res.rows) == 0 {
		fail(fmt.Errorf("no BenchmarkDecode results in the input"))
	}
	samples := len(res.rows[0].samples["ns/op"])
	fmt.Printf("btcpipe benchmarks, %s; %s; GOMAXPROCS %s; %d samples per row (medians)\n",
		time.Now().UTC().Format("2006-01-02"), strings.Join(res.env, ", "), res.procs, samples)
	fmt.Println()
	res.table(os.Stdout, *md)
	res.v2Table(os.Stdout, *md)
	res.writerTable(os.Stdout, *md)
	fmt.Println()
	res.targetTable(os.Stdout, *md)
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "report: %v\n", err)
	os.Exit(1)
}
