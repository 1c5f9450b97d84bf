package crawler

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// Sink receives the crawl's output. The crawler calls it from one goroutine
// at a time (it serialises the calls), so a Sink need not be safe for
// concurrent use. An error stops the crawl, and Run returns it.
type Sink interface {
	// Record is called once per node, as soon as its outcome is known.
	// r must not be kept after the call.
	Record(r *Record) error
	// Summary is called once, at the end of the crawl, interrupted or not.
	Summary(s *Summary) error
}

// MaxLine is the longest node line JSONLines writes. Lines this short go out
// in one write(2) that the kernel applies whole (for a pipe, PIPE_BUF is
// 4,096 bytes; a regular file takes a write of one page at once), so a
// reader never sees half a line even if the process is killed. A record is
// far shorter (the user agent is at most 256 bytes, an error 256); a longer
// one is refused rather than split. The summary line, written last, is not
// bounded (its maps grow with the number of distinct user agents).
const MaxLine = 4096

// JSONLines is a Sink writing one JSON object per line to W: each line,
// newline included, in a single W.Write call, so that with W an *os.File
// opened with O_APPEND (or a pipe) every line is written whole by one
// write(2) or not at all, even when the process is killed.
type JSONLines struct {
	W   io.Writer
	buf bytes.Buffer
	enc *json.Encoder
}

// NewJSONLines returns a sink writing to w.
func NewJSONLines(w io.Writer) *JSONLines {
	j := &JSONLines{W: w}
	j.enc = json.NewEncoder(&j.buf)
	j.enc.SetEscapeHTML(false)
	return j
}

// Record writes r as one line.
func (j *JSONLines) Record(r *Record) error { return j.line(r, MaxLine) }

// Summary writes s as one line.
func (j *JSONLines) Summary(s *Summary) error { return j.line(s, 0) }

// line writes v as one line of at most limit bytes (0: no limit).
func (j *JSONLines) line(v any, limit int) error {
	j.buf.Reset()
	if err := j.enc.Encode(v); err != nil { // Encode appends the newline
		return fmt.Errorf("crawler: encoding a line: %w", err)
	}
	if limit > 0 && j.buf.Len() > limit {
		return fmt.Errorf("crawler: a line of %d bytes is over MaxLine (%d)", j.buf.Len(), limit)
	}
	n, err := j.W.Write(j.buf.Bytes())
	if err == nil && n != j.buf.Len() {
		err = io.ErrShortWrite
	}
	if err != nil {
		return fmt.Errorf("crawler: writing a line: %w", err)
	}
	return nil
}
