package netreach

import (
	"bufio"
	"bytes"
	"net"
	"strings"
	"testing"
)

// scriptConn is a net.Conn whose reads come from a fixed answer and whose
// writes are discarded.
type scriptConn struct {
	net.Conn
	r *bytes.Reader
}

func (c *scriptConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *scriptConn) Write(p []byte) (int, error) { return len(p), nil }

// FuzzSOCKSHandshake feeds a hostile proxy's answers to the client: it
// must return, with an error or a connection, and never panic.
func FuzzSOCKSHandshake(f *testing.F) {
	f.Add([]byte{5, 2, 1, 0, 5, 0, 0, 1, 0, 0, 0, 0, 0, 0}, true)
	f.Add([]byte{5, 0, 5, 0, 0, 3, 4, 'a', 'b', 'c', 'd', 0, 1}, false)
	f.Add([]byte{5, 0, 5, 0xF0}, false)
	f.Add([]byte{5, 0, 5, 0, 0, 4, 0}, false)
	f.Fuzz(func(t *testing.T, answer []byte, auth bool) {
		creds := Credentials{}
		if auth {
			creds = Credentials{User: "u", Pass: "p"}
		}
		addr := []byte{ATYPDomain, 3, 'a', 'b', 'c', 0, 1}
		err := socksHandshake(&scriptConn{r: bytes.NewReader(answer)}, creds, addr)
		if err == nil && len(answer) < 10 {
			t.Fatalf("success on a %d-byte answer %x", len(answer), answer)
		}
	})
}

// FuzzSAMReply parses hostile reply lines.
func FuzzSAMReply(f *testing.F) {
	f.Add("HELLO REPLY RESULT=OK VERSION=3.1\n")
	f.Add("STREAM STATUS RESULT=CANT_REACH_PEER MESSAGE=\"a \\\"quoted\\\" reason\"\n")
	f.Add("NAMING REPLY RESULT=OK NAME=x VALUE=abc~-==\n")
	f.Add("SESSION STATUS RESULT=OK DESTINATION=\"unterminated\n")
	f.Fuzz(func(t *testing.T, in string) {
		line, err := readLine(bufio.NewReaderSize(strings.NewReader(in), 16))
		if err != nil {
			return
		}
		if len(line) > MaxSAMLine || strings.Contains(line, "\n") {
			t.Fatalf("readLine returned %d bytes with a newline or over the limit", len(line))
		}
		r, err := parseSAMReply(line)
		if err == nil && len(strings.Split(r.verb, " ")) != 2 {
			t.Fatalf("verb %q of %q is not two words", r.verb, line)
		}
	})
}

func TestParseSAMReply(t *testing.T) {
	tests := []struct {
		in      string
		verb    string
		keys    map[string]string
		wantErr bool
	}{
		{"HELLO REPLY RESULT=OK VERSION=3.1", "HELLO REPLY", map[string]string{"RESULT": "OK", "VERSION": "3.1"}, false},
		{"STREAM STATUS RESULT=I2P_ERROR MESSAGE=\"Session was closed\"", "STREAM STATUS",
			map[string]string{"RESULT": "I2P_ERROR", "MESSAGE": "Session was closed"}, false},
		{`X Y MESSAGE="a \"b\" \\ c" K=`, "X Y", map[string]string{"MESSAGE": `a "b" \ c`, "K": ""}, false},
		{"  NAMING   REPLY  RESULT=OK  FLAG ", "NAMING REPLY", map[string]string{"RESULT": "OK", "FLAG": ""}, false},
		{"HELLO", "", nil, true},
		{"HELLO REPLY MESSAGE=\"open", "", nil, true},
	}
	for _, tt := range tests {
		r, err := parseSAMReply(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("%q: error %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if tt.wantErr {
			continue
		}
		if r.verb != tt.verb || len(r.keys) != len(tt.keys) {
			t.Errorf("%q: got %q %v, want %q %v", tt.in, r.verb, r.keys, tt.verb, tt.keys)
		}
		for k, v := range tt.keys {
			if r.keys[k] != v {
				t.Errorf("%q: %s = %q, want %q", tt.in, k, r.keys[k], v)
			}
		}
	}
}
