package dashboard

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/btcpipe/btcpipe/internal/textfmt"
	"github.com/btcpipe/btcpipe/internal/version"
	"github.com/btcpipe/btcpipe/monitor"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Paths of the pages.
const (
	PathOverview  = "/"
	PathNodes     = "/nodes"
	PathSnapshots = "/snapshots"
	PathProgress  = "/live/progress"
	PathStatic    = "/static/"
)

// PageSize is the number of rows of a node or snapshot list page.
const PageSize = 50

// MaxQuery bounds the search string (as the API does).
const MaxQuery = 256

// ContentSecurityPolicy is sent with every page: only the dashboard's own
// origin, no inline script or style.
const ContentSecurityPolicy = "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self'; " +
	"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// Dashboard serves the pages; it is an http.Handler, safe for concurrent
// use. Make one with New.
type Dashboard struct {
	store    *monitor.Store
	progress func() monitor.Progress
	log      *logrus.Entry
	pages    map[string]*template.Template
	mux      *http.ServeMux
	now      func() time.Time

	mu      sync.Mutex
	summary *summary // of the newest complete snapshot
}

// New returns the dashboard of store. progress (may be nil) reports the
// crawl in flight (monitor.Monitor.Progress); errors of the store are logged
// to log (may be nil).
func New(store *monitor.Store, progress func() monitor.Progress, log *logrus.Entry) *Dashboard {
	d := &Dashboard{store: store, progress: progress, log: log, pages: parsePages(), mux: http.NewServeMux(), now: time.Now}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err) // embedded: cannot happen
	}
	files := http.StripPrefix("/static/", http.FileServerFS(static))
	d.mux.Handle("GET "+PathStatic, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		files.ServeHTTP(w, r)
	}))
	d.mux.HandleFunc("GET /{$}", d.overview)
	d.mux.HandleFunc("GET "+PathNodes, d.latestNodes)
	d.mux.HandleFunc("GET "+PathNodes+"/{addr}", d.node)
	d.mux.HandleFunc("GET "+PathSnapshots, d.snapshots)
	d.mux.HandleFunc("GET "+PathSnapshots+"/{id}", d.snapshot)
	d.mux.HandleFunc("GET "+PathProgress, d.liveProgress)
	d.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			d.fail(w, r, http.StatusMethodNotAllowed, fmt.Errorf("method %s not allowed: the dashboard is read-only", r.Method))
			return
		}
		d.fail(w, r, http.StatusNotFound, fmt.Errorf("no page at %s", r.URL.Path))
	})
	return d
}

// ServeHTTP serves the dashboard's pages.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	d.mux.ServeHTTP(w, r)
}

var funcs = template.FuncMap{
	"f":        f,
	"group":    textfmt.Group[int],
	"group64":  func(n int64) string { return textfmt.Group(n) },
	"group32":  func(n int32) string { return textfmt.Group(n) },
	"ms":       formatMs,
	"pct":      func(v float64) string { return fmt.Sprintf("%.1f%%", v) },
	"time":     formatTime,
	"timep":    formatTimePtr,
	"short":    shortTime,
	"net":      networkLabel,
	"nodeURL":  nodeURL,
	"snapURL":  func(id int64) string { return fmt.Sprintf("%s/%d", PathSnapshots, id) },
	"services": serviceNames,
	"hex":      func(v uint64) string { return fmt.Sprintf("%016x", v) },
	"outcome":  func(o string) string { return strings.ReplaceAll(o, "_", " ") },
	"half":     func(v float64) float64 { return v / 2 },
	"add":      func(a, b float64) float64 { return a + b },
	"sub":      func(a, b float64) float64 { return a - b },
	"mul":      func(i int, v float64) float64 { return float64(i) * v },
	"dur":      func(a time.Time, b *time.Time) string { return b.Sub(a).Round(time.Second).String() },
}

// parsePages parses the layout with each page.
func parsePages() map[string]*template.Template {
	layout := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/charts.html", "templates/nodetable.html"))
	pages := map[string]*template.Template{}
	for _, name := range []string{"overview", "nodes", "node", "snapshots", "error"} {
		pages[name] = template.Must(template.Must(layout.Clone()).ParseFS(templateFS, "templates/"+name+".html"))
	}
	return pages
}

// base is what every page has.
type base struct {
	Title   string
	Nav     string // the nav entry to mark current
	Vantage string
	Chain   string // the Bitcoin network of the snapshots
	Version string
	Now     string
}

func (d *Dashboard) base(title, nav string) base {
	return base{Title: title, Nav: nav, Vantage: d.store.Vantage(), Chain: d.network(), Version: version.Version,
		Now: d.now().UTC().Format(timeFormat)}
}

func (d *Dashboard) network() string {
	// The store names its network only in its snapshots.
	l, err := d.store.Snapshots(context.Background(), 1, 0)
	if err == nil && len(l.Snapshots) > 0 {
		return l.Snapshots[0].Network
	}
	return ""
}

// render writes page name with data; the page is built whole first, so an
// error of the template gives a clean 500.
func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, code int, name string, data any) {
	var buf bytes.Buffer
	if err := d.pages[name].ExecuteTemplate(&buf, "layout.html", data); err != nil {
		if d.log != nil {
			d.log.WithError(err).WithField("page", name).Error("dashboard: rendering a page")
		}
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		w.Write(buf.Bytes())
	}
}

type errorPage struct {
	base
	Code    int
	Status  string
	Message string
}

// badRequest marks an error as the visitor's (400).
type badRequest struct{ error }

func bad(format string, args ...any) error { return badRequest{fmt.Errorf(format, args...)} }

// fail renders the error page.
func (d *Dashboard) fail(w http.ResponseWriter, r *http.Request, code int, err error) {
	d.render(w, r, code, "error", errorPage{base: d.base(http.StatusText(code), ""), Code: code, Status: http.StatusText(code), Message: err.Error()})
}

// failErr picks the status for err: 400 for a bad request, 404 for
// monitor.ErrNotFound, 503 for the rest (the database), which is logged.
func (d *Dashboard) failErr(w http.ResponseWriter, r *http.Request, err error) {
	var br badRequest
	switch {
	case errors.As(err, &br):
		d.fail(w, r, http.StatusBadRequest, err)
	case errors.Is(err, monitor.ErrNotFound):
		d.fail(w, r, http.StatusNotFound, err)
	case errors.Is(err, context.Canceled):
	default:
		if d.log != nil {
			d.log.WithError(err).WithField("path", r.URL.Path).Warn("dashboard: request failed")
		}
		d.fail(w, r, http.StatusServiceUnavailable, errors.New("the database cannot answer now; try again in a moment"))
	}
}

// liveProgress is GET /live/progress: monitor.Progress as JSON.
func (d *Dashboard) liveProgress(w http.ResponseWriter, r *http.Request) {
	p := d.currentProgress()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	_ = enc.Encode(p)
}

func (d *Dashboard) currentProgress() monitor.Progress {
	if d.progress != nil {
		return d.progress()
	}
	return monitor.Progress{APIVersion: monitor.APIVersion, Vantage: d.store.Vantage()}
}

// Formats.
const timeFormat = "2006-01-02 15:04 UTC"

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(timeFormat)
}

func formatTimePtr(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return formatTime(*t)
}

func formatMs(v float64) string {
	switch {
	case v <= 0:
		return "–"
	case v < 10:
		return fmt.Sprintf("%.1f ms", v)
	case v < 10_000:
		return fmt.Sprintf("%.0f ms", v)
	}
	return fmt.Sprintf("%.1f s", v/1000)
}

func nodeURL(addr string) string { return PathNodes + "/" + url.PathEscape(addr) }
