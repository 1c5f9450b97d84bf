package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
)

// API paths (see API.md for every field).
const (
	PathSnapshots = "/api/v1/snapshots"
	PathNodes     = "/api/v1/nodes/"
	PathStats     = "/api/v1/stats"
	PathProgress  = "/api/v1/progress"
)

// Progress is GET /api/v1/progress: the crawl in flight, if any.
type Progress struct {
	APIVersion string     `json:"api_version"`
	Vantage    string     `json:"vantage"`
	Running    bool       `json:"running"`
	Snapshot   int64      `json:"snapshot"`
	Started    *time.Time `json:"started"`
	Discovered int        `json:"discovered"`
	Queued     int        `json:"queued"`
	Tried      int        `json:"tried"`
	Reachable  int        `json:"reachable"`
	Failed     int        `json:"failed"`
	NotDialled int        `json:"not_dialled"`
	InFlight   int        `json:"in_flight"`
	Done       int        `json:"done"`
	NextCrawl  *time.Time `json:"next_crawl"`
	// PendingWrites counts snapshots crawled but not yet stored (the
	// database is unreachable).
	PendingWrites int `json:"pending_writes"`
	// LastComplete is the newest complete snapshot's id (0: none).
	LastComplete int64 `json:"last_complete"`
}

// APIError is the body of every 4xx and 5xx answer.
type APIError struct {
	APIVersion string `json:"api_version"`
	Error      string `json:"error"`
}

// API serves the JSON API and the exports of a store.
type API struct {
	store    *Store
	progress func() Progress
	log      *logrus.Entry
}

// NewAPI returns the API of s; progress (may be nil) reports the crawl in
// flight; errors of the store are logged to log (may be nil).
func NewAPI(s *Store, progress func() Progress, log *logrus.Entry) *API {
	return &API{store: s, progress: progress, log: log}
}

// Register adds the API's routes to mux; any other /api/ path is a 404
// with a JSON body.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("/api/", a.get(func(w http.ResponseWriter, r *http.Request) {
		a.fail(w, http.StatusNotFound, fmt.Errorf("no such API path %q (see %s, %s, %s, %s)", r.URL.Path, PathSnapshots, PathNodes+"{addr}", PathStats, PathProgress))
	}))
	mux.HandleFunc(PathSnapshots, a.get(a.snapshots))
	mux.HandleFunc(PathSnapshots+"/{id}", a.get(a.snapshot))
	mux.HandleFunc(PathSnapshots+"/{id}/export", a.get(a.export))
	mux.HandleFunc(PathNodes+"{addr}", a.get(a.node))
	mux.HandleFunc(PathStats, a.get(a.stats))
	mux.HandleFunc(PathProgress, a.get(a.progressHandler))
}

// Handler returns a mux with only the API.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	a.Register(mux)
	return mux
}

// badRequest marks an error as the client's (400).
type badRequest struct{ error }

func bad(format string, args ...any) error { return badRequest{fmt.Errorf(format, args...)} }

func (a *API) get(h func(http.ResponseWriter, *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			a.fail(w, http.StatusMethodNotAllowed, fmt.Errorf("method %s not allowed: the API is read-only (GET)", r.Method))
			return
		}
		h(w, r)
	}
}

func (a *API) fail(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, APIError{APIVersion: APIVersion, Error: err.Error()})
}

// failErr picks the status for err: 400 for a bad request, 404 for
// ErrNotFound, 503 for the rest (the database), which is logged.
func (a *API) failErr(w http.ResponseWriter, r *http.Request, err error) {
	var br badRequest
	switch {
	case errors.As(err, &br):
		a.fail(w, http.StatusBadRequest, err)
	case errors.Is(err, ErrNotFound):
		a.fail(w, http.StatusNotFound, err)
	case errors.Is(err, context.Canceled):
		// the client went away
	default:
		if a.log != nil {
			a.log.WithError(err).WithField("path", r.URL.Path).Warn("API request failed")
		}
		a.fail(w, http.StatusServiceUnavailable, errors.New("the database cannot answer now; try again"))
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true) // user agents are peer-controlled
	_ = enc.Encode(v)
}

// known are the query parameters each endpoint takes; others are refused.
func checkParams(r *http.Request, known ...string) error {
	for k := range r.URL.Query() {
		ok := false
		for _, n := range known {
			ok = ok || k == n
		}
		if !ok {
			return bad("unknown parameter %q (this endpoint takes %s)", k, strings.Join(known, ", "))
		}
	}
	return nil
}

func intParam(r *http.Request, name string, def, lo, hi int) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		return 0, bad("%s=%q: want an integer from %d to %d", name, s, lo, hi)
	}
	return v, nil
}

func timeParam(r *http.Request, name string) (time.Time, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return time.Now().Add(-d), nil
	}
	return time.Time{}, bad("%s=%q: want an RFC 3339 time (2006-01-02T15:04:05Z) or a duration before now (24h)", name, s)
}

func (a *API) snapshots(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r, "limit", "offset"); err != nil {
		a.failErr(w, r, err)
		return
	}
	limit, err := intParam(r, "limit", DefaultLimit, 1, MaxLimit)
	if err != nil {
		a.failErr(w, r, err)
		return
	}
	offset, err := intParam(r, "offset", 0, 0, 1<<31-1)
	if err != nil {
		a.failErr(w, r, err)
		return
	}
	l, err := a.store.Snapshots(r.Context(), limit, offset)
	if err != nil {
		a.failErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, l)
}

// snapshotID parses {id}: a positive integer or "latest".
func (a *API) snapshotID(r *http.Request) (int64, error) {
	s := r.PathValue("id")
	if s == "latest" {
		return a.store.LatestID(r.Context())
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 1 {
		return 0, bad("snapshot id %q: want a positive integer or latest", s)
	}
	return id, nil
}

func nodeQuery(r *http.Request) (NodeQuery, error) {
	q := NodeQuery{Q: r.URL.Query().Get("q"), Network: r.URL.Query().Get("network"), Outcome: r.URL.Query().Get("outcome"), Sort: r.URL.Query().Get("sort")}
	if len(q.Q) > 256 {
		return q, bad("q: at most 256 bytes")
	}
	if _, ok := SortKeys[q.Sort]; q.Sort != "" && !ok {
		keys := sortedKeys(SortKeys)
		return q, bad("sort=%q: want one of %s", q.Sort, strings.Join(keys, ", "))
	}
	switch o := r.URL.Query().Get("order"); o {
	case "", "asc":
	case "desc":
		q.Desc = true
	default:
		return q, bad("order=%q: want asc or desc", o)
	}
	var err error
	if q.Limit, err = intParam(r, "limit", DefaultLimit, 1, MaxLimit); err != nil {
		return q, err
	}
	q.Offset, err = intParam(r, "offset", 0, 0, 1<<31-1)
	return q, err
}

func (a *API) snapshot(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r, "q", "network", "outcome", "sort", "order", "limit", "offset"); err != nil {
		a.failErr(w, r, err)
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
	p, err := a.store.SnapshotNodes(r.Context(), id, q)
	if err != nil {
		a.failErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (a *API) node(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r, "since"); err != nil {
		a.failErr(w, r, err)
		return
	}
	addr := r.PathValue("addr")
	if portOf(addr) == 0 || len(addr) > 128 {
		a.failErr(w, r, bad("node %q: want host:port, like 192.0.2.1:8333 or [2001:db8::1]:8333", addr))
		return
	}
	since, err := timeParam(r, "since")
	if err != nil {
		a.failErr(w, r, err)
		return
	}
	if since.IsZero() {
		since = time.Now().Add(-30 * 24 * time.Hour)
	}
	h, err := a.store.Node(r.Context(), addr, since)
	if err != nil {
		a.failErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h)
}

func (a *API) stats(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r, "from", "to", "dims", "top", "points"); err != nil {
		a.failErr(w, r, err)
		return
	}
	var q StatsQuery
	var err error
	if q.From, err = timeParam(r, "from"); err != nil {
		a.failErr(w, r, err)
		return
	}
	if q.To, err = timeParam(r, "to"); err != nil {
		a.failErr(w, r, err)
		return
	}
	if q.Top, err = intParam(r, "top", 0, 0, 10_000); err != nil {
		a.failErr(w, r, err)
		return
	}
	if q.Points, err = intParam(r, "points", 500, 2, 10_000); err != nil {
		a.failErr(w, r, err)
		return
	}
	if s := r.URL.Query().Get("dims"); s != "" {
		for _, d := range strings.Split(s, ",") {
			ok := false
			for _, k := range Dims {
				ok = ok || d == k
			}
			if !ok {
				a.failErr(w, r, bad("dims: unknown dimension %q (want some of %s)", d, strings.Join(Dims, ",")))
				return
			}
			q.Dims = append(q.Dims, d)
		}
	}
	st, err := a.store.Stats(r.Context(), q)
	if err != nil {
		a.failErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (a *API) progressHandler(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r); err != nil {
		a.failErr(w, r, err)
		return
	}
	p := Progress{APIVersion: APIVersion, Vantage: a.store.Vantage()}
	if a.progress != nil {
		p = a.progress()
	}
	writeJSON(w, http.StatusOK, p)
}
