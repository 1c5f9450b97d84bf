// Package textfmt renders numbers and labels for people, the same way in the
// crawl report (report) and the monitor's dashboard (dashboard).
package textfmt

import (
	"strconv"
	"strings"
)

// Group renders n with thousands separators: 12,345.
func Group[T ~int | ~int32 | ~int64](n T) string {
	s := strconv.FormatInt(int64(n), 10)
	digits := strings.TrimPrefix(s, "-")
	var b strings.Builder
	if len(digits) < len(s) {
		b.WriteByte('-')
	}
	for i, r := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Percent renders part/total as a percentage with one decimal: "0%" and
// "100%" without one, "<0.1%" for a sliver, "0%" of nothing.
func Percent(part, total int) string {
	if total == 0 {
		return "0%"
	}
	p := float64(part) / float64(total) * 100
	switch {
	case p == 100 || p == 0:
		return strconv.Itoa(int(p)) + "%"
	case p < 0.1:
		return "<0.1%"
	}
	return strconv.FormatFloat(p, 'f', 1, 64) + "%"
}

// Shorten cuts s to at most n runes, ending in "…" when cut.
func Shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
