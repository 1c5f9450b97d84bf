// Package logsafe keeps what peers send from writing into a terminal
// through the text logs: Escape shows control characters as \xNN escapes
// (as Bitcoin Core's SanitizeString keeps them out of its log, but keeping
// the evidence), and Formatter applies it to every message a text logger
// prints. A user agent holding ESC ] 0 ; … BEL (set the window title) or
// ESC [ 2 J (clear the screen) is printed as text, not obeyed.
//
// JSON logs need none of this: encoding/json escapes control characters.
package logsafe

import (
	"strings"
	"unicode/utf8"

	"github.com/sirupsen/logrus"
)

// unsafe reports whether r may not reach a terminal as it is: C0 controls
// (newline too: it could forge a log line), DEL, C1 controls (some terminals
// obey 0x9b as ESC [), and bytes that are not UTF-8.
func unsafe(r rune, keepNewline bool) bool {
	switch {
	case r == '\n' && keepNewline:
		return false
	case r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0, r == utf8.RuneError:
		return true
	}
	return false
}

// Escape returns s with every control character (and every byte that is not
// UTF-8) written as \xNN, or \u00NN for C1 controls. A string with none
// is returned as it is, without allocating.
func Escape(s string) string { return escape(s, false) }

func escape(s string, keepNewline bool) string {
	clean := true
	for _, r := range s {
		if unsafe(r, keepNewline) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	const hex = "0123456789abcdef"
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			b.WriteString(`\x`)
			b.WriteByte(hex[s[i]>>4])
			b.WriteByte(hex[s[i]&15])
		case unsafe(r, keepNewline) && r < 0x80:
			b.WriteString(`\x`)
			b.WriteByte(hex[r>>4])
			b.WriteByte(hex[r&15])
		case unsafe(r, keepNewline):
			b.WriteString(`\u00`)
			b.WriteByte(hex[r>>4&15])
			b.WriteByte(hex[r&15])
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// Formatter is a logrus formatter that escapes control characters in each
// entry's message (keeping newlines, which only btcpipe's own multi-line
// messages hold: peer strings are escaped where they are logged) and in its
// string and error fields, before Inner formats it.
type Formatter struct{ Inner logrus.Formatter }

// Format escapes e's message and fields into a copy and formats that.
func (f Formatter) Format(e *logrus.Entry) ([]byte, error) {
	c := *e
	c.Message = escape(e.Message, true)
	var data logrus.Fields
	for k, v := range e.Data {
		var s string
		switch v := v.(type) {
		case string:
			s = v
		case error:
			s = v.Error()
		default:
			continue
		}
		if es := Escape(s); es != s || isErr(v) {
			if data == nil {
				data = make(logrus.Fields, len(e.Data))
				for k2, v2 := range e.Data {
					data[k2] = v2
				}
			}
			data[k] = es
		}
	}
	if data != nil {
		c.Data = data
	}
	return f.Inner.Format(&c)
}

func isErr(v any) bool {
	_, ok := v.(error)
	return ok
}
