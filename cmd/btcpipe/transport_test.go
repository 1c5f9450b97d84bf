package main

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/btcpipe/btcpipe/internal/btcdtest"
)

// TestBinaryTransportLogs runs the binary against btcd with each transport
// and checks the handshake line names the transport, and (at debug level)
// that a v2 connection logs its 64-hex-digit session id.
func TestBinaryTransportLogs(t *testing.T) {
	bin := binary(t)
	for _, tc := range []struct {
		transport string
		btcdV2    bool
		want      string
	}{
		{"v2", true, "v2"},
		{"auto", true, "v2"},
		{"auto", false, "v1"}, // falls back
		{"v1", true, "v1"},
	} {
		t.Run(tc.transport+"/"+tc.want, func(t *testing.T) {
			b := btcdtest.Start(t, btcdtest.Options{Network: "regtest", V2Transport: tc.btcdV2})
			cmd := exec.Command(bin, "node")
			cmd.Env = cleanEnv("BTCPIPE_NETWORK=regtest", "BTCPIPE_PEER="+b.Addr.String(), "BTCPIPE_LOG_FORMAT=json",
				"BTCPIPE_LOG_LEVEL=debug", "BTCPIPE_TRANSPORT="+tc.transport)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_ = cmd.Process.Signal(syscall.SIGTERM)
				done := make(chan struct{})
				go func() { _ = cmd.Wait(); close(done) }()
				select {
				case <-done:
				case <-time.After(5 * time.Second):
					_ = cmd.Process.Kill()
					<-done
				}
			})
			type line struct {
				Msg       string `json:"msg"`
				Transport string `json:"transport"`
				SessionID string `json:"session_id"`
			}
			found := make(chan [2]line, 1)
			go func() {
				sc := bufio.NewScanner(stdout)
				sc.Buffer(make([]byte, 1<<20), 1<<20)
				var sess line
				for sc.Scan() {
					var l line
					if json.Unmarshal(sc.Bytes(), &l) != nil {
						continue
					}
					if l.SessionID != "" {
						sess = l
					}
					if regexp.MustCompile(`^handshake complete \(`).MatchString(l.Msg) {
						found <- [2]line{l, sess}
						for sc.Scan() { // drain until the process ends
						}
						return
					}
				}
			}()
			select {
			case got := <-found:
				hs, sess := got[0], got[1]
				if hs.Transport != tc.want {
					t.Errorf("handshake line %q has transport %q, want %q", hs.Msg, hs.Transport, tc.want)
				}
				if tc.want == "v2" && !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(sess.SessionID) {
					t.Errorf("no debug line with a 64-hex-digit session id before the handshake line (got %+v)", sess)
				}
				if tc.want == "v1" && sess.SessionID != "" {
					t.Errorf("a v1 connection logged session id %q", sess.SessionID)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("no handshake line within 15 s")
			}
		})
	}
}
