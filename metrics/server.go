package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"
)

// Paths the server answers.
const (
	PathMetrics = "/metrics"
	PathHealthz = "/healthz"
	PathReadyz  = "/readyz"
)

// ShutdownTimeout bounds the graceful shutdown of the HTTP server: requests
// in flight get this long to finish before their connections are closed.
const ShutdownTimeout = time.Second

// Handler serves /metrics from g, /healthz (200 "ok" as long as the process
// can answer) and /readyz (200 "ready" when ready reports true, 503 "not
// ready" otherwise; ready may be nil, meaning never ready). Any other path
// is 404. Only GET and HEAD are allowed.
func Handler(g prometheus.Gatherer, reg prometheus.Registerer, ready func() bool) http.Handler {
	mux := http.NewServeMux()
	opts := promhttp.HandlerOpts{MaxRequestsInFlight: 4, Timeout: 10 * time.Second}
	if reg != nil {
		opts.Registry = reg // counts promhttp's own errors
		mux.Handle("GET "+PathMetrics, promhttp.InstrumentMetricHandler(reg, promhttp.HandlerFor(g, opts)))
	} else {
		mux.Handle("GET "+PathMetrics, promhttp.HandlerFor(g, opts))
	}
	mux.HandleFunc("GET "+PathHealthz, func(w http.ResponseWriter, _ *http.Request) {
		text(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET "+PathReadyz, func(w http.ResponseWriter, _ *http.Request) {
		if ready != nil && ready() {
			text(w, http.StatusOK, "ready")
			return
		}
		text(w, http.StatusServiceUnavailable, "not ready")
	})
	return mux
}

func text(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	io.WriteString(w, body+"\n")
}

// Server serves Handler on one listener.
type Server struct {
	ln  net.Listener
	srv *http.Server
}

// Listen opens addr (host:port; ":9090" listens on every interface, port 0
// picks a free one) and returns a server for m's registry, with ready
// behind /readyz. Errors of the HTTP server (a client that hung up…) are
// logged to log at debug level; log may be nil.
func (m *Metrics) Listen(addr string, ready func() bool, log *logrus.Entry) (*Server, error) {
	return Listen(addr, Handler(m.Registry, m.Registry, ready), log)
}

// Listen opens addr and returns a server for h.
func Listen(addr string, h http.Handler, logger *logrus.Entry) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	errorLog := log.New(io.Discard, "", 0)
	if logger != nil {
		errorLog = log.New(logWriter{logger}, "", 0)
	}
	return &Server{ln: ln, srv: &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          errorLog,
	}}, nil
}

// Addr returns the address the server listens on (with the real port when
// Listen was given port 0).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close closes the listener and any connection at once (for a server whose
// Serve was never called, or to cut one short).
func (s *Server) Close() error {
	err := s.srv.Close()
	if lerr := s.ln.Close(); err == nil && !errors.Is(lerr, net.ErrClosed) {
		err = lerr
	}
	return err
}

// Serve serves until ctx ends, then shuts down gracefully: it stops
// accepting, closes idle connections at once and gives requests in flight
// up to ShutdownTimeout. It returns nil after a shutdown that ctx asked
// for, or the error that stopped serving.
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("metrics: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	if err != nil {
		s.srv.Close() // requests still running: cut them off
	}
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("metrics: shutdown: %w", err)
	}
	return nil
}

// logWriter sends what net/http logs to logrus, one event per line.
type logWriter struct{ log *logrus.Entry }

func (w logWriter) Write(p []byte) (int, error) {
	w.log.Debug(strings.TrimSpace(string(p)))
	return len(p), nil
}
