package monitor

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode"
)

// Export formats of GET /api/v1/snapshots/{id}/export?format=….
const (
	FormatCSV   = "csv"
	FormatJSONL = "jsonl"
	// FormatSeeds is the DNS seeder's dump (dnsseed.dump), the input of
	// Bitcoin Core's contrib/seeds/makeseeds.py.
	FormatSeeds = "seeds"
)

// CSVHeader is the first line of the CSV export.
var CSVHeader = []string{"addr", "network", "outcome", "protocol", "user_agent", "services", "relay", "transport", "start_height",
	"connect_ms", "handshake_ms", "addrs_returned", "first_seen", "last_seen",
	"uptime_2h", "uptime_8h", "uptime_1d", "uptime_7d", "uptime_30d", "good"}

// SeedsHeader is the seeder dump's comment line.
const SeedsHeader = "# address                                        good  lastSuccess    %(2h)   %(8h)   %(1d)   %(7d)  %(30d)  blocks      svcs  version"

// SeedLine formats e as one line of the seeder dump, as sipa's seeder
// writes it and makeseeds.py splits it on white space: address, good (1 or
// 0), last success (Unix seconds), the five uptimes as "NN.NN%", blocks
// (start height), services (16 hex digits), protocol version and the user
// agent in double quotes. makeseeds.py reads the user agent as one word,
// so white space, quotes and control characters in it become '_'.
func SeedLine(e *NodeEntry) string {
	last := int64(0)
	if e.LastSeen != nil {
		last = e.LastSeen.Unix()
	}
	p := e.up.Percent()
	ua := strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || r == '"' || !unicode.IsPrint(r) {
			return '_'
		}
		return r
	}, e.UserAgent)
	return fmt.Sprintf("%-47s  %4d  %11d  %6.2f%% %6.2f%% %6.2f%% %6.2f%% %6.2f%%  %6d  %016x  %5d \"%s\"",
		e.Addr, b01(e.Good), last, p[0], p[1], p[2], p[3], p[4], e.StartHeight, e.Services, e.Protocol, ua)
}

func (a *API) export(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r, "format", "q", "network", "outcome", "sort", "order"); err != nil {
		a.failErr(w, r, err)
		return
	}
	format := r.URL.Query().Get("format")
	var ctype, ext string
	switch format {
	case FormatCSV:
		ctype, ext = "text/csv; charset=utf-8", "csv"
	case FormatJSONL:
		ctype, ext = "application/jsonl; charset=utf-8", "jsonl"
	case FormatSeeds:
		ctype, ext = "text/plain; charset=utf-8", "txt"
	default:
		a.failErr(w, r, bad("format=%q: want csv, jsonl or seeds", format))
		return
	}
	id, err := a.snapshotID(r)
	if err != nil {
		a.failErr(w, r, err)
		return
	}
	q, err := nodeQuery(r)
	if err != nil {
		a.failErr(w, r, err)
		return
	}
	q.Limit, q.Offset = -1, 0
	if format == FormatSeeds && q.Outcome == "" {
		q.Outcome = "reachable" // the seeder dumps nodes that answered
	}
	si, err := a.store.SnapshotByID(r.Context(), id)
	if err != nil {
		a.failErr(w, r, err)
		return
	}
	if si.Status != StatusComplete {
		a.failErr(w, r, bad("snapshot %d is %s: only a complete snapshot can be exported", id, si.Status))
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="btcpipe-%s-%d.%s"`, si.Vantage, id, ext))
	bw := bufio.NewWriterSize(w, 64<<10)
	var write func(e *NodeEntry) error
	var cw *csv.Writer
	switch format {
	case FormatCSV:
		cw = csv.NewWriter(bw)
		if err := cw.Write(CSVHeader); err != nil {
			return
		}
		write = func(e *NodeEntry) error { cw.Write(csvRow(e)); return cw.Error() }
	case FormatJSONL:
		enc := json.NewEncoder(bw)
		write = func(e *NodeEntry) error { return enc.Encode(e) }
	case FormatSeeds:
		io.WriteString(bw, SeedsHeader+"\n")
		write = func(e *NodeEntry) error { _, err := io.WriteString(bw, SeedLine(e)+"\n"); return err }
	}
	if _, err := a.store.EachNode(r.Context(), id, q, write); err != nil && a.log != nil {
		a.log.WithError(err).Warn("export cut short")
	}
	if cw != nil {
		cw.Flush()
	}
	bw.Flush()
}

func csvRow(e *NodeEntry) []string {
	first, last := "", ""
	if e.FirstSeen != nil {
		first = e.FirstSeen.Format("2006-01-02T15:04:05Z")
	}
	if e.LastSeen != nil {
		last = e.LastSeen.Format("2006-01-02T15:04:05Z")
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	u := e.Uptime
	return []string{e.Addr, e.Network, e.Outcome, strconv.Itoa(int(e.Protocol)), e.UserAgent, fmt.Sprintf("%016x", e.Services),
		strconv.FormatBool(e.Relay), e.Transport, strconv.Itoa(int(e.StartHeight)), f(e.ConnectMs), f(e.HandshakeMs),
		strconv.Itoa(e.AddrsReturned), first, last, f(u.H2), f(u.H8), f(u.D1), f(u.D7), f(u.D30), strconv.FormatBool(e.Good)}
}
