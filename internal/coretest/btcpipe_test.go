package coretest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// This file drives btcpipe through its built binary, configured only with
// BTCPIPE_ variables and observed only through its JSON log and output
// files, so that these tests hold whatever its internals become.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// btcpipeBinary builds ./cmd/btcpipe once per test process (static, as the
// container ships it) into a temporary directory removed by TestMain.
func btcpipeBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := btcdtest.RepoRoot()
		if err != nil {
			buildErr = err
			return
		}
		dir, err := os.MkdirTemp("", "coretest-btcpipe-")
		if err != nil {
			buildErr = err
			return
		}
		buildDir = dir
		binPath = filepath.Join(dir, "btcpipe")
		cmd := exec.Command("go", "build", "-trimpath", "-o", binPath, "./cmd/btcpipe")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/btcpipe: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

var buildDir string

// cleanEnv is the environment without any BTCPIPE_ setting, plus extra.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BTCPIPE_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// logLine is one line of btcpipe's JSON log.
type logLine map[string]any

func (l logLine) msg() string { s, _ := l["msg"].(string); return s }

func (l logLine) int(key string) int { f, _ := l[key].(float64); return int(f) }

// run is a running `btcpipe node`.
type run struct {
	cmd   *exec.Cmd
	done  chan struct{}
	err   error
	mu    sync.Mutex
	lines []logLine
	bad   []string // stdout lines that are not JSON
	wake  chan struct{}
}

// startNode runs `btcpipe node` with the given BTCPIPE_ settings (network
// regtest and JSON logs are set here) and collects its log. A cleanup sends
// SIGTERM and, after 5 s, SIGKILL.
func startNode(t *testing.T, env ...string) *run {
	t.Helper()
	cmd := exec.Command(btcpipeBinary(t), "node")
	cmd.Env = cleanEnv(append([]string{"BTCPIPE_NETWORK=regtest", "BTCPIPE_LOG_FORMAT=json"}, env...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &run{cmd: cmd, done: make(chan struct{}), wake: make(chan struct{}, 1)}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		for sc.Scan() {
			var l logLine
			r.mu.Lock()
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				r.bad = append(r.bad, sc.Text())
			} else {
				r.lines = append(r.lines, l)
			}
			r.mu.Unlock()
			select {
			case r.wake <- struct{}{}:
			default:
			}
		}
		io.Copy(io.Discard, stdout)
		r.err = cmd.Wait()
		close(r.done)
	}()
	t.Cleanup(func() {
		if err := r.stop(5 * time.Second); err != nil {
			t.Logf("btcpipe node: %v", err)
		}
	})
	return r
}

// stop sends SIGTERM and waits up to timeout for the exit, then SIGKILLs.
func (r *run) stop(timeout time.Duration) error {
	select {
	case <-r.done:
		return r.err
	default:
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
		return r.err
	case <-time.After(timeout):
		r.cmd.Process.Kill()
		<-r.done
		return fmt.Errorf("still running %v after SIGTERM; killed", timeout)
	}
}

// wait returns the first log line for which match is true, waiting for it
// until ctx ends or btcpipe exits.
func (r *run) wait(ctx context.Context, what string, match func(logLine) bool) (logLine, error) {
	for {
		r.mu.Lock()
		for _, l := range r.lines {
			if match(l) {
				r.mu.Unlock()
				return l, nil
			}
		}
		r.mu.Unlock()
		select {
		case <-r.wake:
		case <-r.done:
			// Read what came before the exit once more.
			r.mu.Lock()
			for _, l := range r.lines {
				if match(l) {
					r.mu.Unlock()
					return l, nil
				}
			}
			r.mu.Unlock()
			return nil, fmt.Errorf("btcpipe exited (%v) before logging %s; log:\n%s", r.err, what, r.dump())
		case <-ctx.Done():
			return nil, fmt.Errorf("btcpipe logged no %s: %w; log:\n%s", what, ctx.Err(), r.dump())
		}
	}
}

func (r *run) all(match func(logLine) bool) []logLine {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []logLine
	for _, l := range r.lines {
		if match(l) {
			out = append(out, l)
		}
	}
	return out
}

func (r *run) dump() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, l := range r.lines {
		j, _ := json.Marshal(l)
		b.Write(j)
		b.WriteByte('\n')
	}
	for _, s := range r.bad {
		b.WriteString("not JSON: " + s + "\n")
	}
	return b.String()
}

func msgHas(prefix string) func(logLine) bool {
	return func(l logLine) bool { return strings.HasPrefix(l.msg(), prefix) }
}

var errNoPeer = errors.New("no such peer in getpeerinfo")
