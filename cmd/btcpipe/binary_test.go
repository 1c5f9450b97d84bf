package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/btcpipe/btcpipe/internal/btcdtest"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds btcpipe once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "btcpipe-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "btcpipe")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("building btcpipe: %v", buildErr)
	}
	return binPath
}

// cleanEnv is the test process's environment without any BTCPIPE_ setting.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BTCPIPE_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

func TestBadConfigExitsTwoWithOneLine(t *testing.T) {
	bin := binary(t)
	for _, tc := range []struct {
		name string
		env  string
		want string
	}{
		{"duration", "BTCPIPE_PING_INTERVAL=soon", "BTCPIPE_PING_INTERVAL"},
		{"network", "BTCPIPE_NETWORK=moonnet", "BTCPIPE_NETWORK"},
		{"peer", "BTCPIPE_PEER=127.0.0.1:99999", "BTCPIPE_PEER"},
		{"level", "BTCPIPE_LOG_LEVEL=loud", "BTCPIPE_LOG_LEVEL"},
		{"verifier", "BTCPIPE_VERIFIER=quantum", "BTCPIPE_VERIFIER"},
		{"transport", "BTCPIPE_TRANSPORT=v3", "BTCPIPE_TRANSPORT"},
		{"empty transport", "BTCPIPE_TRANSPORT= ", "BTCPIPE_TRANSPORT"},
		{"v1 framer under v2", "BTCPIPE_TRANSPORT=v2 BTCPIPE_FRAMER=copy", "BTCPIPE_TRANSPORT"},
		{"queue", "BTCPIPE_QUEUE_DEPTH=0", "BTCPIPE_QUEUE_DEPTH"},
		{"negative timeout", "BTCPIPE_HANDSHAKE_TIMEOUT=-1s", "BTCPIPE_HANDSHAKE_TIMEOUT"},
		{"read buffer", "BTCPIPE_READ_BUFFER=1024", "BTCPIPE_READ_BUFFER"},
		{"transport", "BTCPIPE_TRANSPORT=v9", "BTCPIPE_TRANSPORT"},
		{"writer", "BTCPIPE_WRITER=fast", "BTCPIPE_WRITER"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, "node")
			cmd.Env = cleanEnv(strings.Fields(tc.env)...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Fatalf("exit = %v, want status 2", err)
			}
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], tc.want) {
				t.Errorf("stderr = %q, want one line naming %s", stderr.String(), tc.want)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout = %q, want nothing before any connection", stdout.String())
			}
		})
	}
}

func TestHelpListsEveryVariable(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"help"}, &out, io.Discard); code != 0 {
		t.Fatalf("help exited %d", code)
	}
	for _, v := range []string{"BTCPIPE_NETWORK", "BTCPIPE_PEER", "BTCPIPE_LOG_LEVEL", "BTCPIPE_LOG_FORMAT",
		"BTCPIPE_USER_AGENT", "BTCPIPE_TRANSPORT", "BTCPIPE_QUEUE_DEPTH", "BTCPIPE_VERIFIER", "BTCPIPE_HANDSHAKE_TIMEOUT",
		"BTCPIPE_PING_INTERVAL", "BTCPIPE_PING_TIMEOUT"} {
		if !strings.Contains(out.String(), v) {
			t.Errorf("help does not mention %s", v)
		}
	}
}

// TestSIGTERMAgainstBtcd runs the built binary against a real btcd, waits
// for the handshake in its JSON log, sends SIGTERM and expects exit status 0
// within 2 s.
func TestSIGTERMAgainstBtcd(t *testing.T) {
	bin := binary(t)
	b := btcdtest.Start(t, btcdtest.Options{Network: "regtest"})
	cmd := exec.Command(bin, "node")
	cmd.Env = cleanEnv("BTCPIPE_NETWORK=regtest", "BTCPIPE_PEER="+b.Addr.String(), "BTCPIPE_LOG_FORMAT=json")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	handshake := make(chan struct{})
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			lines <- line
			if strings.Contains(line, "handshake complete") {
				once.Do(func() { close(handshake) })
			}
		}
	}()
	select {
	case <-handshake:
	case <-time.After(10 * time.Second):
		t.Fatalf("no handshake logged within 10s; stderr: %s", stderr.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("btcpipe exited with %v after SIGTERM, want status 0; stderr: %s", err, stderr.String())
		}
	case <-ctx.Done():
		t.Fatalf("btcpipe still running 2s after SIGTERM")
	}
	for line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("stdout line is not JSON: %q", line)
			continue
		}
		if m["msg"] == nil || m["level"] == nil || m["time"] == nil {
			t.Errorf("log line lacks msg, level or time: %q", line)
		}
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr = %q, want nothing (logs go to stdout)", stderr.String())
	}
}
