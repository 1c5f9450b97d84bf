//go:build image

package imagetest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/btcpipe/btcpipe/internal/btcdtest"
	"github.com/btcpipe/btcpipe/internal/coretest"
)

const (
	envImage  = "BTCPIPE_IMAGE"
	envEngine = "BTCPIPE_CONTAINER_ENGINE"
	wantUID   = 65532
)

// engine returns the container engine's command line. These tests are
// built only with -tags image (make test-image builds the image first), so
// a missing image or engine is an error, not a reason to skip.
func engine(t *testing.T) (image string, argv []string) {
	t.Helper()
	image = os.Getenv(envImage)
	if image == "" {
		t.Fatalf("no $%s: run the image tests with `make test-image`, which builds the image", envImage)
	}
	argv = strings.Fields(os.Getenv(envEngine))
	if len(argv) == 0 {
		argv = []string{"podman"}
	}
	if _, err := exec.LookPath(argv[0]); err != nil {
		t.Fatalf("container engine %q: %v (make test-image installs podman)", argv[0], err)
	}
	return image, argv
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// container is one `ENGINE run` in the foreground, whose stdout is read as
// btcpipe's log.
type container struct {
	t      *testing.T
	argv   []string
	name   string
	cmd    *exec.Cmd
	done   chan struct{}
	err    error
	stderr bytes.Buffer

	mu    sync.Mutex
	lines []map[string]any
	raw   []string
	wake  chan struct{}
}

// run starts the image with --network host --read-only and the given
// BTCPIPE_ settings; a cleanup removes the container.
func run(t *testing.T, image string, argv []string, env ...string) *container {
	t.Helper()
	c := &container{t: t, argv: argv, name: fmt.Sprintf("btcpipe-imagetest-%d-%x", os.Getpid(), rand.Uint32()),
		done: make(chan struct{}), wake: make(chan struct{}, 1)}
	args := append(append([]string{}, argv[1:]...), "run", "--rm", "--name", c.name, "--network", "host",
		"--read-only", "--health-interval", "disable")
	for _, e := range env {
		args = append(args, "-e", e)
	}
	args = append(args, image, "node")
	c.cmd = exec.Command(argv[0], args...)
	c.cmd.Stderr = &c.stderr
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.mu.Lock()
			c.raw = append(c.raw, sc.Text())
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				c.lines = append(c.lines, m)
			}
			c.mu.Unlock()
			select {
			case c.wake <- struct{}{}:
			default:
			}
		}
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			c.engine(context.Background(), "rm", "--force", "--time", "0", c.name)
			select {
			case <-c.done:
			case <-time.After(10 * time.Second):
				c.cmd.Process.Kill()
				<-c.done
			}
		}
	})
	return c
}

// engine runs an engine subcommand and returns its stdout.
func (c *container) engine(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.argv[0], append(append([]string{}, c.argv[1:]...), args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%s %s: %v: %s", c.argv[0], strings.Join(args, " "), err, lastLine(errb.String()))
	}
	return out.String(), nil
}

func lastLine(s string) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return l[len(l)-1]
}

func (c *container) wait(ctx context.Context, what, prefix string) (map[string]any, error) {
	for {
		c.mu.Lock()
		for _, l := range c.lines {
			if m, _ := l["msg"].(string); strings.HasPrefix(m, prefix) {
				c.mu.Unlock()
				return l, nil
			}
		}
		c.mu.Unlock()
		select {
		case <-c.wake:
		case <-c.done:
			return nil, fmt.Errorf("container exited (%v) before logging %s; stdout:\n%s\nstderr:\n%s", c.err, what, c.stdout(), c.stderr.String())
		case <-ctx.Done():
			return nil, fmt.Errorf("container logged no %s: %w; stdout:\n%s", what, ctx.Err(), c.stdout())
		}
	}
}

func (c *container) stdout() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.raw, "\n")
}

func (c *container) received() (peers int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range c.lines {
		if m, _ := l["msg"].(string); strings.HasPrefix(m, "received ") {
			f, _ := l["peers"].(float64)
			peers += int(f)
		}
	}
	return peers
}

// uid returns the real uid of the container's main process, read on the host
// from /proc (the image has no shell and no id command to ask inside).
func (c *container) uid(ctx context.Context) (int, error) {
	out, err := c.engine(ctx, "inspect", "--format", "{{.State.Pid}}", c.name)
	if err != nil {
		return 0, err
	}
	status, err := os.ReadFile("/proc/" + strings.TrimSpace(out) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(status)) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "Uid:" {
			var uid int
			_, err := fmt.Sscan(f[1], &uid)
			return uid, err
		}
	}
	return 0, fmt.Errorf("no Uid line in /proc/%s/status", strings.TrimSpace(out))
}

// checkImage runs the image against the peer at addr and checks everything
// the image promises; wantPeers is how many addresses the peer answers an
// independent client.
func checkImage(t *testing.T, image string, argv []string, addr netip.AddrPort, wantPeers int, ua string) {
	metrics := freePort(t)
	c := run(t, image, argv, "BTCPIPE_NETWORK=regtest", "BTCPIPE_PEER="+addr.String(),
		fmt.Sprintf("BTCPIPE_METRICS_ADDR=127.0.0.1:%d", metrics), "BTCPIPE_USER_AGENT="+ua)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	hs, err := c.wait(ctx, "the handshake", "handshake complete")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("in the container: %v", hs["msg"])
	if _, err := c.wait(ctx, "the peer count", "received "); err != nil {
		t.Fatal(err)
	}
	if got := c.received(); got != wantPeers {
		t.Errorf("the container counted %d peers, the peer answers an independent client %d", got, wantPeers)
	}
	if uid, err := c.uid(ctx); err != nil {
		t.Error(err)
	} else if uid != wantUID {
		t.Errorf("btcpipe runs as uid %d, want %d", uid, wantUID)
	}
	if ro, err := c.engine(ctx, "inspect", "--format", "{{.HostConfig.ReadonlyRootfs}}", c.name); err != nil || strings.TrimSpace(ro) != "true" {
		t.Errorf("read-only root filesystem: %q, %v", ro, err)
	}
	if _, err := c.engine(ctx, "exec", c.name, "/usr/local/bin/btcpipe", "healthcheck"); err != nil {
		t.Errorf("btcpipe healthcheck in the container after the handshake: %v", err)
	}
	if argv[0] == "podman" {
		// The image's own HEALTHCHECK (podman runs it on demand).
		if _, err := c.engine(ctx, "healthcheck", "run", c.name); err != nil {
			t.Errorf("the image's HEALTHCHECK after the handshake: %v", err)
		}
	}
	if _, err := c.engine(ctx, "exec", c.name, "/bin/sh", "-c", "true"); err == nil {
		t.Errorf("the image has a shell")
	}

	// stop sends SIGTERM and returns once the container has exited (it
	// would SIGKILL after --time); the run then removes the container.
	start := time.Now()
	if _, err := c.engine(ctx, "stop", "--time", "10", c.name); err != nil {
		t.Error(err)
	}
	took := time.Since(start)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the container's run did not end 10 s after stop")
	}
	t.Logf("stop (SIGTERM) to exit: %v; to the end of run --rm: %v", took.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if c.err != nil {
		t.Errorf("container exit after SIGTERM: %v, want status 0; stderr:\n%s", c.err, c.stderr.String())
	}
	if took >= 2*time.Second {
		t.Errorf("stop took %v, want under 2 s", took)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range c.raw {
		if !json.Valid([]byte(l)) {
			t.Errorf("stdout line is not JSON: %q", l)
		}
	}
	if len(c.raw) == 0 {
		t.Errorf("nothing on stdout")
	}
}

func TestImageAgainstBtcd(t *testing.T) {
	image, argv := engine(t)
	b := btcdtest.Start(t, btcdtest.Options{Network: btcdtest.Regtest})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := btcdtest.SeedAddrs(ctx, b.Addr, btcdtest.Regtest, btcdtest.RoutableAddrs(200, 3)); err != nil {
		t.Fatal(err)
	}
	oracle, err := btcdtest.GetAddr(ctx, b.Addr, btcdtest.Regtest)
	if err != nil {
		t.Fatal(err)
	}
	if len(oracle) == 0 {
		t.Fatal("btcd answers no addresses")
	}
	const ua = "/btcpipe-image:btcd/"
	checkImage(t, image, argv, b.Addr, len(oracle), ua)
	if !strings.Contains(b.Log(), ua) {
		t.Errorf("btcd's log does not show the user agent %s set with BTCPIPE_USER_AGENT", ua)
	}
}

func TestImageAgainstCore(t *testing.T) {
	image, argv := engine(t)
	n := coretest.Start(t, coretest.Options{})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := n.AddPeerAddresses(ctx, btcdtest.RoutableAddrs(200, 4)); err != nil {
		t.Fatal(err)
	}
	oracle, err := coretest.GetAddr(ctx, n.Addr, true)
	if err != nil {
		t.Fatal(err)
	}
	const ua = "/btcpipe-image:core/"
	checkImage(t, image, argv, n.Addr, len(oracle), ua)
	if !strings.Contains(n.Log(), "receive version message: "+ua) {
		t.Errorf("Core's debug.log does not show the user agent %s set with BTCPIPE_USER_AGENT", ua)
	}
	for _, c := range n.Complaints() {
		t.Errorf("Core complained: %s", c)
	}
}
