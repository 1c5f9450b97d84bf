package btcdtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	// DefaultReadyTimeout bounds how long StartNode and Restart wait for a
	// completed handshake.
	DefaultReadyTimeout = 15 * time.Second

	// StopTimeout is how long Stop waits after SIGINT before SIGKILL.
	StopTimeout = 5 * time.Second

	// logTailLines is how much of btcd's output an error carries.
	logTailLines = 30

	// freePortAttempts is how often StartNode tries another free port when
	// btcd cannot listen on the one it picked (another process took it).
	freePortAttempts = 3
)

// Options configures a btcd started by Start or StartNode.
type Options struct {
	// Network is Regtest (the default when empty) or Simnet.
	Network string

	// Port is the loopback port btcd listens on; 0 picks a free one.
	Port uint16

	// ExtraArgs are appended to btcd's command line, for example
	// "--debuglevel=AMGR=trace". Flags that could make btcd reach beyond
	// loopback or escape its temporary directories (--connect, --addpeer,
	// --listen, --proxy, --upnp, --externalip, --datadir, --configfile, any
	// network selection, ...) are refused.
	ExtraArgs []string

	// V2Transport starts btcd with --v2transport: it then accepts BIP324
	// (v2) connections as well as v1 ones.
	V2Transport bool

	// Binary is the btcd to run; empty means FindBinary.
	Binary string

	// ReadyTimeout bounds the wait for a completed handshake; 0 means
	// DefaultReadyTimeout.
	ReadyTimeout time.Duration
}

// deniedFlags are btcd flags ExtraArgs may not carry (long names, and the
// short ones btcd defines for them).
var deniedFlags = []string{
	"connect", "addpeer", "a", "listen", "nolisten", "proxy", "onion", "onionuser",
	"onionpass", "noonion", "torisolation", "upnp", "externalip", "rpclisten",
	"rpcconnect", "datadir", "b", "logdir", "configfile", "C", "testnet", "testnet4",
	"regtest", "simnet", "signet", "signetseednode", "nodnsseed", "addcheckpoint",
	"norpc", "profile", "cpuprofile", "memprofile",
}

func checkExtraArgs(args []string) error {
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name := strings.TrimLeft(a, "-")
		name, _, _ = strings.Cut(name, "=")
		for _, d := range deniedFlags {
			if name == d || (len(d) == 1 && strings.HasPrefix(a, "-"+d) && !strings.HasPrefix(a, "--")) {
				return fmt.Errorf("btcdtest: ExtraArgs may not set %q: btcdtest controls it to keep btcd on loopback and in its temp dirs", a)
			}
		}
	}
	return nil
}

// Node is a running btcd, listening on Addr, isolated from every network
// but loopback. Its methods are safe for concurrent use.
type Node struct {
	// Addr is where btcd listens: 127.0.0.1 and a port that stays the same
	// across Restart.
	Addr netip.AddrPort

	// Network is Regtest or Simnet.
	Network string

	// Binary is the btcd executable.
	Binary string

	// DataDir and LogDir are btcd's --datadir and --logdir, inside a fresh
	// temporary directory that Close removes. btcd appends the network name
	// to both (for example DataDir/regtest/peers.json).
	DataDir, LogDir string

	root         string
	args         []string
	readyTimeout time.Duration

	mu   sync.Mutex
	proc *process // nil when btcd is not running
}

// process is one run of btcd.
type process struct {
	cmd  *exec.Cmd
	out  *os.File      // btcd's stdout and stderr
	done chan struct{} // closed when btcd has exited
	err  error         // cmd.Wait's answer, set before done is closed
}

// StartNode starts btcd with the safe flags every btcd here must have:
//
//	--regtest|--simnet --listen=127.0.0.1:PORT --connect=127.0.0.1:1 --nodnsseed
//	--norpc --datadir=TMP/data --logdir=TMP/logs --utxocachemaxsize=1
//	--sigcachemaxsize=0
//
// --connect makes btcd dial only 127.0.0.1:1 (which refuses), so its address
// manager never dials what it learns. HOME is set to the temporary directory
// as well, so btcd neither reads nor writes ~/.btcd. btcd runs in its own
// process group (a terminal's Ctrl-C does not reach it) and gets SIGKILL if
// the process that started it dies (Linux).
//
// StartNode returns once a handshake with btcd has completed (see Dial), or an
// error carrying the tail of btcd's output when that does not happen within
// ctx and Options.ReadyTimeout. ctx bounds only the start; stop the node with
// Stop or Kill and remove its directories with Close.
func StartNode(ctx context.Context, opts Options) (*Node, error) {
	network := opts.Network
	if network == "" {
		network = Regtest
	}
	if _, err := magic(network); err != nil {
		return nil, err
	}
	if err := checkExtraArgs(opts.ExtraArgs); err != nil {
		return nil, err
	}
	bin := opts.Binary
	if bin == "" {
		var err error
		if bin, err = FindBinary(); err != nil {
			return nil, err
		}
	}
	// btcd runs in its temporary directory: resolve a relative path now.
	if strings.ContainsRune(bin, filepath.Separator) {
		abs, err := filepath.Abs(bin)
		if err != nil {
			return nil, fmt.Errorf("btcdtest: %w", err)
		}
		bin = abs
	}
	root, err := os.MkdirTemp("", "btcdtest-"+network+"-")
	if err != nil {
		return nil, fmt.Errorf("btcdtest: %w", err)
	}
	n := &Node{
		Network:      network,
		Binary:       bin,
		DataDir:      filepath.Join(root, "data"),
		LogDir:       filepath.Join(root, "logs"),
		root:         root,
		readyTimeout: opts.ReadyTimeout,
	}
	if n.readyTimeout <= 0 {
		n.readyTimeout = DefaultReadyTimeout
	}
	attempts := 1
	if opts.Port == 0 {
		attempts = freePortAttempts
	}
	for i := range attempts {
		port := opts.Port
		if port == 0 {
			if port, err = freePort(); err != nil {
				break
			}
		}
		n.Addr = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), port)
		n.args = append([]string{
			"--" + network,
			"--listen=" + n.Addr.String(),
			"--connect=127.0.0.1:1",
			"--nodnsseed",
			"--norpc",
			"--datadir=" + n.DataDir,
			"--logdir=" + n.LogDir,
			"--utxocachemaxsize=1",
			"--sigcachemaxsize=0",
		}, opts.ExtraArgs...)
		if opts.V2Transport {
			n.args = append(n.args, "--v2transport")
		}
		err = n.launch(ctx)
		if err == nil {
			return n, nil
		}
		// Another process may have taken the free port between our
		// probe and btcd's listen: try another one.
		if i+1 < attempts && strings.Contains(err.Error(), "address already in use") {
			continue
		}
		break
	}
	os.RemoveAll(root)
	return nil, err
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (uint16, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("btcdtest: picking a free port: %w", err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port), nil
}

// launch starts btcd and waits until it completes a handshake. On error btcd
// is no longer running.
func (n *Node) launch(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc != nil {
		return errors.New("btcdtest: btcd is already running")
	}
	for _, d := range []string{n.DataDir, n.LogDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("btcdtest: %w", err)
		}
	}
	out, err := os.OpenFile(n.OutputFile(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("btcdtest: %w", err)
	}
	cmd := exec.Command(n.Binary, n.args...)
	cmd.Dir = n.root
	cmd.Env = append(os.Environ(), "HOME="+n.root)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sysProcAttr()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("btcdtest: starting %s: %w", n.Binary, err)
	}
	p := &process{cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := n.waitReady(ctx, p); err != nil {
		p.kill()
		return fmt.Errorf("btcdtest: btcd (%s, pid %d) on %s not ready after %v: %w\n--- tail of btcd's output ---\n%s",
			n.Network, cmd.Process.Pid, n.Addr, time.Since(start).Round(time.Millisecond), err, n.OutputTail(logTailLines))
	}
	n.proc = p
	return nil
}

// waitReady dials btcd until a handshake completes, btcd exits, or the
// deadline passes.
func (n *Node) waitReady(ctx context.Context, p *process) error {
	ctx, cancel := context.WithTimeout(ctx, n.readyTimeout)
	defer cancel()
	var last error
	for {
		select {
		case <-p.done:
			return fmt.Errorf("btcd exited: %v", p.err)
		case <-ctx.Done():
			if last == nil {
				last = ctx.Err()
			}
			return last
		default:
		}
		// Something else may hold the port and never answer: give up
		// the attempt as soon as btcd exits.
		attempt, cancelAttempt := context.WithTimeout(ctx, 5*time.Second)
		go func() {
			select {
			case <-p.done:
				cancelAttempt()
			case <-attempt.Done():
			}
		}()
		c, err := Dial(attempt, n.Addr, n.Network)
		cancelAttempt()
		if err == nil {
			return c.Close()
		}
		last = err
		select {
		case <-p.done:
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// kill sends SIGKILL and waits for the process to exit.
func (p *process) kill() {
	p.cmd.Process.Kill()
	<-p.done
	p.out.Close()
}

// take removes and returns the running process, or nil.
func (n *Node) take() *process {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.proc
	n.proc = nil
	return p
}

// Stop sends btcd SIGINT and waits for it to exit; after StopTimeout it sends
// SIGKILL and returns an error saying so. Stopping a stopped node does
// nothing. btcd saves its address manager to DataDir/<network>/peers.json
// when it stops on SIGINT (not on SIGKILL).
func (n *Node) Stop() error {
	p := n.take()
	if p == nil {
		return nil
	}
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
		p.out.Close()
		return nil
	case <-time.After(StopTimeout):
		p.kill()
		return fmt.Errorf("btcdtest: btcd on %s ignored SIGINT for %v; killed it", n.Addr, StopTimeout)
	}
}

// Kill sends btcd SIGKILL and waits for it to exit. Killing a stopped node
// does nothing.
func (n *Node) Kill() {
	if p := n.take(); p != nil {
		p.kill()
	}
}

// Restart stops btcd (Stop) if it runs, and starts it again on the same port
// with the same directories and flags, waiting for a completed handshake as
// StartNode does.
func (n *Node) Restart() error {
	if err := n.Stop(); err != nil {
		return err
	}
	return n.launch(context.Background())
}

// Close stops btcd (Stop) and removes its temporary directory.
func (n *Node) Close() error {
	err := n.Stop()
	if rmErr := os.RemoveAll(n.root); err == nil {
		err = rmErr
	}
	return err
}

// Running reports whether btcd is running: started, not stopped, and not
// exited on its own.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc == nil {
		return false
	}
	select {
	case <-n.proc.done:
		return false
	default:
		return true
	}
}

// Pid returns the process id of the running btcd, or 0.
func (n *Node) Pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc == nil {
		return 0
	}
	return n.proc.cmd.Process.Pid
}

// LogFile returns the path of btcd's log file, LogDir/<network>/btcd.log.
func (n *Node) LogFile() string {
	return filepath.Join(n.LogDir, n.Network, "btcd.log")
}

// Log returns the contents of btcd's log file ("" if there is none).
func (n *Node) Log() string {
	b, _ := os.ReadFile(n.LogFile())
	return string(b)
}

// OutputFile returns the path of the file that collects btcd's stdout and
// stderr across restarts. btcd writes every log line there too, unbuffered,
// and also the errors it prints before its log exists (bad flags, say).
func (n *Node) OutputFile() string {
	return filepath.Join(n.root, "btcd.out")
}

// OutputTail returns the last lines of OutputFile.
func (n *Node) OutputTail(lines int) string {
	b, _ := os.ReadFile(n.OutputFile())
	b = bytes.TrimRight(b, "\n")
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '\n' {
			if lines--; lines == 0 {
				return string(b[i+1:])
			}
		}
	}
	return string(b)
}

// addrTotal matches the address manager's trace line for a stored address.
var addrTotal = regexp.MustCompile(`Added new address \S+ for a total of (\d+) addresses`)

// AddrCount returns how many addresses btcd's address manager holds, read
// from the last "Added new address ... for a total of N addresses" line btcd
// has written to OutputFile. Such lines exist only at trace level, so the
// node must have been started with ExtraArgs "--debuglevel=AMGR=trace" (or
// "--debuglevel=trace"); AddrCount returns an error otherwise. It is exact
// right after SeedAddrs returns, because btcd writes the line before it
// answers SeedAddrs' ping. It returns 0 when nothing was stored since start.
func (n *Node) AddrCount() (int, error) {
	if !slices.ContainsFunc(n.args, isAddrTrace) {
		return 0, errors.New("btcdtest: AddrCount needs a node started with --debuglevel=AMGR=trace")
	}
	b, err := os.ReadFile(n.OutputFile())
	if err != nil {
		return 0, fmt.Errorf("btcdtest: %w", err)
	}
	m := addrTotal.FindAllSubmatch(b, -1)
	if len(m) == 0 {
		return 0, nil
	}
	return strconv.Atoi(string(m[len(m)-1][1]))
}

// isAddrTrace reports whether a btcd argument sets the address manager's log
// level to trace.
func isAddrTrace(arg string) bool {
	v, ok := strings.CutPrefix(strings.TrimLeft(arg, "-"), "debuglevel=")
	return ok && (v == "trace" || slices.Contains(strings.Split(v, ","), "AMGR=trace"))
}

// String describes the node for messages.
func (n *Node) String() string {
	return "btcd " + n.Network + " " + n.Addr.String() + " pid " + strconv.Itoa(n.Pid())
}

// Start is StartNode for tests: it finds btcd with Binary (skipping or
// failing as Binary does when there is none), fails the test when btcd does
// not become ready, and registers a cleanup that stops btcd and removes its
// directories.
func Start(tb testing.TB, opts Options) *Node {
	tb.Helper()
	if opts.Binary == "" {
		opts.Binary = Binary(tb)
	}
	n, err := StartNode(context.Background(), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := n.Close(); err != nil {
			tb.Logf("stopping %v: %v", n, err)
		}
	})
	return n
}
