package report_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/btcpipe/btcpipe/crawler"
	"github.com/btcpipe/btcpipe/report"
)

// TestReportByNetwork: the Networks section states, per network, the
// reachable, tried, not dialled and stale counts, and the unique nodes.
func TestReportByNetwork(t *testing.T) {
	rp := report.New("mainnet")
	add := func(network string, o crawler.Outcome, reason string, n int) {
		for range n {
			r := &crawler.Record{Type: crawler.RecordType, Network: network, Outcome: o, Reason: reason}
			if o == crawler.Reachable {
				r.Handshake = &crawler.Handshake{UserAgent: "/Satoshi:27.0.0/", Protocol: 70016}
			}
			if err := rp.Record(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	add("ipv4", crawler.Reachable, "", 7)
	add("ipv4", crawler.Timeout, "", 3)
	add("ipv4", crawler.NotDialled, "stale: last announced 240h0m0s ago, more than the maximum age 72h0m0s", 2)
	add("torv3", crawler.Reachable, "", 11)
	add("torv3", crawler.NotDialled, "tor: no proxy configured", 0)
	add("i2p", crawler.NotDialled, "i2p: no SAM bridge configured", 5)
	sum := crawler.NewSummary("mainnet")
	sum.UniqueNodes, sum.MultiNetwork = 16, 2
	if err := rp.Summary(&sum); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := rp.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, want := range []string{
		"ipv4 <b>7 reachable of 10 tried, 2 not dialled (2 stale)</b>",
		"torv3 <b>11 reachable of 11 tried, 0 not dialled</b>",
		"i2p <b>0 reachable of 0 tried, 5 not dialled</b>",
		"unique nodes <b>16 (2 addresses of nodes reached on several networks merged)</b>",
		"Unique nodes",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if strings.Contains(page, "cjdns <b>") {
		t.Error("a network with no address has a line")
	}
}
