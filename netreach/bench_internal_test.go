package netreach

import (
	"bytes"
	"testing"
)

// BenchmarkSOCKSHandshake is the client's side of a SOCKS5 CONNECT with
// username/password and a domain name, against an in-memory proxy: the
// cost the client adds to each Tor connection.
func BenchmarkSOCKSHandshake(b *testing.B) {
	answer := []byte{5, 2, 1, 0, 5, 0, 0, 1, 0, 0, 0, 0, 0, 0}
	host := "cr6wshannianlgtyipln3fxbam2rdthiopc34dcd77aud5b4ro63pnqd.onion"
	addr := append(append([]byte{ATYPDomain, byte(len(host))}, host...), 0x20, 0x8d)
	creds := RandomCredentials()
	sent := 4 + 3 + len(creds.User) + len(creds.Pass) + 3 + len(addr)
	b.SetBytes(int64(sent + len(answer)))
	b.ReportAllocs()
	c := &scriptConn{r: bytes.NewReader(answer)}
	for b.Loop() {
		c.r.Reset(answer)
		if err := socksHandshake(c, creds, addr); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSAMReply parses a NAMING REPLY carrying a destination.
func BenchmarkSAMReply(b *testing.B) {
	raw := make([]byte, 391)
	line := "NAMING REPLY RESULT=OK NAME=x.b32.i2p VALUE=" + I2PBase64.EncodeToString(raw)
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseSAMReply(line); err != nil {
			b.Fatal(err)
		}
	}
}
