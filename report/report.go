package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/btcpipe/btcpipe/crawler"
)

// Report gathers what a crawl found. It is a crawler.Sink; its methods are
// safe for concurrent use. The zero value is not usable: call New.
type Report struct {
	mu         sync.Mutex
	network    string
	summary    *crawler.Summary
	records    int
	byOutcome  map[crawler.Outcome]int
	byNetwork  map[string]map[crawler.Outcome]int
	stale      map[string]int // stale addresses by network
	agents     map[string]int
	protocols  map[int32]int
	services   map[string]int
	noServices int
	transports map[string]int // reachable nodes by transport ("v1", "v2")
	reachable  int
	heights    []int32   // start heights of reachable nodes
	handshakes []float64 // handshake latencies (ms) of nodes that completed one
	first      time.Time // earliest and latest record time, for a report
	last       time.Time // without a summary
}

// New returns an empty report of a crawl of network (its name, as in
// wire.Network.Name; the summary's, when one arrives, takes precedence).
func New(network string) *Report {
	return &Report{
		network:    network,
		byOutcome:  map[crawler.Outcome]int{},
		byNetwork:  map[string]map[crawler.Outcome]int{},
		agents:     map[string]int{},
		protocols:  map[int32]int{},
		services:   map[string]int{},
		transports: map[string]int{},
		stale:      map[string]int{},
	}
}

// Record counts r (a crawler.Sink method; r is not kept).
func (rp *Report) Record(r *crawler.Record) error {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	rp.records++
	rp.byOutcome[r.Outcome]++
	byOutcome := rp.byNetwork[r.Network]
	if byOutcome == nil {
		byOutcome = map[crawler.Outcome]int{}
		rp.byNetwork[r.Network] = byOutcome
	}
	byOutcome[r.Outcome]++
	if r.Outcome == crawler.NotDialled && strings.HasPrefix(r.Reason, crawler.StaleReasonPrefix) {
		rp.stale[r.Network]++
	}
	if !r.Time.IsZero() {
		if rp.first.IsZero() || r.Time.Before(rp.first) {
			rp.first = r.Time
		}
		if r.Time.After(rp.last) {
			rp.last = r.Time
		}
	}
	h := r.Handshake
	if h == nil {
		return nil
	}
	if h.HandshakeMs > 0 {
		rp.handshakes = append(rp.handshakes, h.HandshakeMs)
	}
	if r.Outcome != crawler.Reachable {
		return nil
	}
	rp.reachable++
	rp.agents[h.UserAgent]++
	rp.protocols[h.Protocol]++
	if r.Transport != "" {
		rp.transports[r.Transport]++
	}
	if len(h.Services) == 0 {
		rp.noServices++
	}
	for _, s := range h.Services {
		rp.services[s]++
	}
	rp.heights = append(rp.heights, h.StartHeight)
	return nil
}

// Summary keeps a copy of s (a crawler.Sink method).
func (rp *Report) Summary(s *crawler.Summary) error {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	c := *s
	rp.summary = &c
	if s.Network != "" {
		rp.network = s.Network
	}
	return nil
}

// Records returns how many records were counted.
func (rp *Report) Records() int {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return rp.records
}

// Read builds a report from the JSON lines of a crawl (node lines and, if
// present, the summary line), as `btcpipe crawl` writes them. Lines of
// another type are ignored; a line that is not JSON is an error naming it.
func Read(r io.Reader) (*Report, error) {
	rp := New("")
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20) // the summary line is not bounded
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var head struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(line, &head); err != nil {
			return nil, fmt.Errorf("report: line %d: %w", n, err)
		}
		switch head.Type {
		case crawler.RecordType:
			var rec crawler.Record
			if err := json.Unmarshal(line, &rec); err != nil {
				return nil, fmt.Errorf("report: line %d: %w", n, err)
			}
			rp.Record(&rec)
		case crawler.SummaryType:
			var s crawler.Summary
			if err := json.Unmarshal(line, &s); err != nil {
				return nil, fmt.Errorf("report: line %d: %w", n, err)
			}
			rp.Summary(&s)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	return rp, nil
}
