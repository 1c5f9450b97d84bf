package crawler

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"
)

// TestSummaryByTransport: reachable nodes are counted by the transport
// they spoke; the node line carries "transport".
func TestSummaryByTransport(t *testing.T) {
	s := NewSummary("regtest")
	for _, r := range []Record{
		{Outcome: Reachable, Transport: "v2", Handshake: &Handshake{}},
		{Outcome: Reachable, Transport: "v2", Handshake: &Handshake{}},
		{Outcome: Reachable, Transport: "v1", Handshake: &Handshake{}},
		{Outcome: HandshakeFailed, Transport: "v2"},
		{Outcome: Refused},
	} {
		s.Add(&r)
	}
	if want := map[string]int{"v1": 1, "v2": 2}; !maps.Equal(s.ByTransport, want) {
		t.Errorf("ByTransport = %v, want %v", s.ByTransport, want)
	}
	b, err := json.Marshal(&Record{Type: RecordType, Outcome: Reachable, Transport: "v2"})
	if err != nil || !strings.Contains(string(b), `"transport":"v2"`) {
		t.Errorf("node line %s (%v) lacks \"transport\":\"v2\"", b, err)
	}
}
