package coretest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// DefaultReadyTimeout bounds how long StartNode waits for RPC to answer.
	DefaultReadyTimeout = 30 * time.Second

	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL.
	StopTimeout = 15 * time.Second

	// DefaultP2PPort is the P2P port of a node in a network namespace when
	// Options.P2PPort is 0 (regtest's default).
	DefaultP2PPort = 18444

	freePortAttempts = 3
	logTailLines     = 30
)

// Options configures a bitcoind started by StartNode or Start.
type Options struct {
	// Bind is the address bitcoind listens on for P2P; the zero value means
	// 127.0.0.1. Any other address needs Netns.
	Bind netip.Addr

	// MoreBinds are further addresses bitcoind listens on, on the same P2P
	// port (loopback, or any with Netns).
	MoreBinds []netip.Addr

	// P2PPort and RPCPort are bitcoind's ports. On the host 0 picks free
	// loopback ports; in a namespace P2PPort 0 means DefaultP2PPort and
	// RPCPort must be set (a fresh namespace has every port free).
	P2PPort, RPCPort uint16

	// Netns, when set, runs bitcoind inside that network namespace
	// (`ip netns exec`), which the caller created; RPC then listens on the
	// namespace's 127.0.0.1 and every RPC goes through bitcoin-cli in it.
	Netns string

	// ExtraArgs are appended to the command line, e.g. "-v2transport=0" or
	// "-peertimeout=5". Arguments that could reach beyond the test's
	// network or directories are refused (see checkExtraArgs).
	ExtraArgs []string

	// Binaries to run; zero means FindBinary.
	Binaries Binaries

	// ReadyTimeout bounds the wait for RPC; 0 means DefaultReadyTimeout.
	ReadyTimeout time.Duration
}

// deniedArgs are bitcoind options ExtraArgs may not carry.
var deniedArgs = []string{
	"connect", "addnode", "seednode", "bind", "whitebind", "port", "rpcbind", "rpcport", "rpcallowip",
	"rpcconnect", "proxy", "onion", "i2psam", "externalip", "discover", "dnsseed", "fixedseeds", "forcednsseed",
	"listen", "listenonion", "natpmp", "upnp", "datadir", "conf", "includeconf", "blocksdir", "settings",
	"chain", "testnet", "testnet4", "signet", "regtest", "daemon", "pid", "debuglogfile", "printtoconsole",
	"server", "rpcuser", "rpcpassword", "rpccookiefile", "torcontrol", "cjdnsreachable",
}

func checkExtraArgs(args []string) error {
	for _, a := range args {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		name = strings.TrimPrefix(name, "no")
		for _, d := range deniedArgs {
			if name == d || strings.TrimPrefix(d, "no") == name {
				return fmt.Errorf("coretest: ExtraArgs may not set %q: coretest controls it to keep bitcoind in the test's network and directories", a)
			}
		}
	}
	return nil
}

// Node is a running regtest bitcoind. Its methods are safe for concurrent
// use.
type Node struct {
	// Addr is where bitcoind listens for P2P.
	Addr netip.AddrPort
	// RPCPort is its RPC port (on 127.0.0.1, in Netns when that is set).
	RPCPort uint16
	// Netns is the network namespace it runs in, or "".
	Netns string
	// DataDir is its -datadir, a fresh temporary directory Close removes.
	DataDir string
	// Binaries are the executables it runs with.
	Binaries Binaries

	root string
	args []string
	http *http.Client

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// StartNode starts bitcoind with
//
//	-regtest -datadir=TMP -listen=1 -bind=BIND:P2P -port=P2P -connect=0
//	-dnsseed=0 -fixedseeds=0 -discover=0 -listenonion=0 -natpmp=0
//	-server=1 -rpcbind=127.0.0.1 -rpcallowip=127.0.0.1 -rpcport=RPC
//	-printtoconsole=0 -debug=net -dbcache=4 -maxmempool=5
//
// plus Options.ExtraArgs, and returns once its RPC answers getnetworkinfo.
// bitcoind gets SIGKILL if the process that started it dies. ctx bounds only
// the start; stop it with Stop and remove its directory with Close.
func StartNode(ctx context.Context, opts Options) (*Node, error) {
	if err := checkExtraArgs(opts.ExtraArgs); err != nil {
		return nil, err
	}
	bind := opts.Bind
	if !bind.IsValid() {
		bind = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	if opts.Netns == "" && !bind.IsLoopback() {
		return nil, fmt.Errorf("coretest: bind address %s is not loopback and no namespace was given", bind)
	}
	for _, b := range opts.MoreBinds {
		if opts.Netns == "" && !b.IsLoopback() {
			return nil, fmt.Errorf("coretest: bind address %s is not loopback and no namespace was given", b)
		}
	}
	if opts.Netns != "" && opts.RPCPort == 0 {
		return nil, errors.New("coretest: a node in a network namespace needs Options.RPCPort")
	}
	bins := opts.Binaries
	if bins.Bitcoind == "" {
		var err error
		if bins, err = FindBinary(); err != nil {
			return nil, err
		}
	}
	readyTimeout := opts.ReadyTimeout
	if readyTimeout <= 0 {
		readyTimeout = DefaultReadyTimeout
	}
	attempts := 1
	if opts.Netns == "" && (opts.P2PPort == 0 || opts.RPCPort == 0) {
		attempts = freePortAttempts
	}
	var err error
	for i := range attempts {
		var n *Node
		n, err = newNode(opts, bind, bins)
		if err != nil {
			return nil, err
		}
		start := time.Now()
		if err = n.launch(ctx, readyTimeout); err == nil {
			return n, nil
		}
		err = fmt.Errorf("coretest: bitcoind on %s (rpc %d) not ready after %v: %w\n--- tail of its output and debug.log ---\n%s",
			n.Addr, n.RPCPort, time.Since(start).Round(time.Millisecond), err, n.tail())
		os.RemoveAll(n.root)
		if i+1 < attempts && strings.Contains(err.Error(), "Unable to bind") {
			continue // another process took a free port meanwhile
		}
		break
	}
	return nil, err
}

func newNode(opts Options, bind netip.Addr, bins Binaries) (*Node, error) {
	p2p, rpc := opts.P2PPort, opts.RPCPort
	var err error
	if opts.Netns == "" {
		if p2p == 0 {
			if p2p, err = freePort(); err != nil {
				return nil, err
			}
		}
		for rpc == 0 || rpc == p2p {
			if rpc, err = freePort(); err != nil {
				return nil, err
			}
		}
	} else if p2p == 0 {
		p2p = DefaultP2PPort
	}
	root, err := os.MkdirTemp("", "coretest-")
	if err != nil {
		return nil, fmt.Errorf("coretest: %w", err)
	}
	n := &Node{
		Addr:     netip.AddrPortFrom(bind, p2p),
		RPCPort:  rpc,
		Netns:    opts.Netns,
		DataDir:  filepath.Join(root, "data"),
		Binaries: bins,
		root:     root,
		http:     &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
	}
	n.args = []string{
		"-regtest",
		"-datadir=" + n.DataDir,
		"-listen=1",
		"-bind=" + n.Addr.String(),
		"-port=" + strconv.Itoa(int(p2p)),
		"-connect=0",
		"-dnsseed=0",
		"-fixedseeds=0",
		"-discover=0",
		"-listenonion=0",
		"-natpmp=0",
		"-server=1",
		"-rpcbind=127.0.0.1",
		"-rpcallowip=127.0.0.1",
		"-rpcport=" + strconv.Itoa(int(rpc)),
		"-printtoconsole=0",
		"-debug=net",
		"-dbcache=4",
		"-maxmempool=5",
	}
	for _, b := range opts.MoreBinds {
		n.args = append(n.args, "-bind="+netip.AddrPortFrom(b, p2p).String())
	}
	n.args = append(n.args, opts.ExtraArgs...)
	return n, nil
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (uint16, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("coretest: picking a free port: %w", err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port), nil
}

// command returns an exec.Cmd running bin with args, inside the node's
// namespace when it has one.
func (n *Node) command(ctx context.Context, bin string, args ...string) *exec.Cmd {
	if n.Netns != "" {
		args = append([]string{"netns", "exec", n.Netns, bin}, args...)
		bin = "ip"
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = n.root
	cmd.Env = append(os.Environ(), "HOME="+n.root)
	return cmd
}

func (n *Node) launch(ctx context.Context, readyTimeout time.Duration) error {
	if err := os.MkdirAll(n.DataDir, 0o700); err != nil {
		return fmt.Errorf("coretest: %w", err)
	}
	out, err := os.Create(n.OutputFile())
	if err != nil {
		return fmt.Errorf("coretest: %w", err)
	}
	// bitcoind outlives ctx, which bounds only the start.
	cmd := n.command(context.Background(), n.Binaries.Bitcoind, n.args...)
	cmd.Stdout, cmd.Stderr = out, out
	// Own process group (a terminal's Ctrl-C goes to the test only), and
	// SIGKILL when the test process dies. `ip netns exec` execs bitcoind
	// in the same process, so both hold for it too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("coretest: starting %s: %w", n.Binaries.Bitcoind, err)
	}
	done := make(chan struct{})
	n.mu.Lock()
	n.cmd, n.done = cmd, done
	n.mu.Unlock()
	go func() {
		err := cmd.Wait()
		out.Close()
		n.mu.Lock()
		n.err = err
		n.mu.Unlock()
		close(done)
	}()

	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	var last error
	for {
		if _, last = n.RPC(ctx, "getnetworkinfo"); last == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("bitcoind exited: %v", n.exitErr())
		case <-ctx.Done():
			n.Kill()
			return fmt.Errorf("%w (last RPC error: %v)", ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (n *Node) exitErr() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.err
}

// Pid returns bitcoind's process id, or 0 when it was never started.
func (n *Node) Pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.cmd.Process == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// Running reports whether bitcoind has not exited yet.
func (n *Node) Running() bool {
	n.mu.Lock()
	done := n.done
	n.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// Stop sends bitcoind SIGTERM (a clean shutdown) and waits for it to exit;
// after StopTimeout it sends SIGKILL and says so. Stopping a stopped node
// does nothing.
func (n *Node) Stop() error {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return nil
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		return nil
	case <-time.After(StopTimeout):
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("coretest: bitcoind on %s ignored SIGTERM for %v; killed it", n.Addr, StopTimeout)
	}
}

// Kill sends bitcoind SIGKILL and waits for it to exit.
func (n *Node) Kill() {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-done
}

// Close stops bitcoind (Stop) and removes its temporary directory.
func (n *Node) Close() error {
	err := n.Stop()
	if rmErr := os.RemoveAll(n.root); err == nil {
		err = rmErr
	}
	return err
}

// String describes the node for messages.
func (n *Node) String() string {
	s := "bitcoind " + n.Addr.String() + " pid " + strconv.Itoa(n.Pid())
	if n.Netns != "" {
		s += " in netns " + n.Netns
	}
	return s
}

// OutputFile is where bitcoind's stdout and stderr go (errors before its
// debug.log exists, such as a port in use).
func (n *Node) OutputFile() string { return filepath.Join(n.root, "bitcoind.out") }

// LogFile is bitcoind's debug.log.
func (n *Node) LogFile() string { return filepath.Join(n.DataDir, "regtest", "debug.log") }

// Log returns the contents of debug.log ("" when there is none).
func (n *Node) Log() string {
	b, _ := os.ReadFile(n.LogFile())
	return string(b)
}

func (n *Node) tail() string {
	out, _ := os.ReadFile(n.OutputFile())
	return strings.TrimSpace(string(out)) + "\n" + lastLines(n.Log(), logTailLines)
}

func lastLines(s string, k int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > k {
		lines = lines[len(lines)-k:]
	}
	return strings.Join(lines, "\n")
}

// complaint matches debug.log lines in which Core objects to a peer: a
// misbehaviour score, a discouragement or ban, a message it could not parse
// or did not expect, a protocol violation or timeout, or a disconnection it
// chose. "socket closed" (the peer hung up) is not a complaint.
var complaint = regexp.MustCompile(`(?i)misbehav|discourag|\bban|unknown (message|command)|unsupported message|` +
	`ignoring|invalid|oversized|checksum|header error|malformed|non-?standard|unexpected|` +
	`timeout|protocol violation|disconnecting|dropping|v2 handshake|failed|error`)

// benign are lines complaint matches that say nothing against a peer.
var benign = regexp.MustCompile(`socket closed, disconnecting|Cleared nodestate|Resetting socket|` +
	`connection from .* accepted|-debug|Using .* MiB|setting .* to|Config file|Default data directory`)

// Complaints returns the lines of debug.log in which Core objects to some
// peer (see complaint), in order. Lines from before the first peer connected
// (startup) are not considered.
func (n *Node) Complaints() []string {
	log := n.Log()
	if i := strings.Index(log, "connection from"); i >= 0 {
		log = log[i:]
	} else {
		return nil
	}
	var out []string
	for line := range strings.Lines(log) {
		line = strings.TrimRight(line, "\n")
		if complaint.MatchString(line) && !benign.MatchString(line) {
			out = append(out, line)
		}
	}
	return out
}

// WaitLog waits until debug.log contains s, or ctx ends.
func (n *Node) WaitLog(ctx context.Context, s string) error {
	for {
		if strings.Contains(n.Log(), s) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("coretest: %v: debug.log has no %q: %w", n, s, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// RPCError is an error answer of bitcoind's JSON-RPC.
type RPCError struct {
	Method  string
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *RPCError) Error() string {
	return fmt.Sprintf("coretest: rpc %s: %s (code %d)", e.Method, e.Message, e.Code)
}

// Call is one JSON-RPC request of a batch.
type Call struct {
	Method string
	Params []any
}

// RPC calls method with params and returns its result. On the host it
// speaks JSON-RPC over HTTP with the cookie; in a namespace it runs
// bitcoin-cli there (params are then passed as their fmt.Sprint text, which
// bitcoin-cli converts as it does for a person).
func (n *Node) RPC(ctx context.Context, method string, params ...any) (json.RawMessage, error) {
	res, err := n.Batch(ctx, []Call{{Method: method, Params: params}})
	if err != nil {
		return nil, err
	}
	return res[0].Result, res[0].Err
}

// Result is the answer to one Call of a batch.
type Result struct {
	Result json.RawMessage
	Err    error
}

// Batch sends calls as one JSON-RPC batch (on the host) or one bitcoin-cli
// run each (in a namespace) and returns their answers in order. The error is
// for the transport; each call's own error is in its Result.
func (n *Node) Batch(ctx context.Context, calls []Call) ([]Result, error) {
	if n.Netns != "" {
		return n.cliBatch(ctx, calls)
	}
	cookie, err := os.ReadFile(filepath.Join(n.DataDir, "regtest", ".cookie"))
	if err != nil {
		return nil, fmt.Errorf("coretest: rpc: %w", err)
	}
	type req struct {
		Version string `json:"jsonrpc"`
		ID      int    `json:"id"`
		Method  string `json:"method"`
		Params  []any  `json:"params"`
	}
	reqs := make([]req, len(calls))
	for i, c := range calls {
		p := c.Params
		if p == nil {
			p = []any{}
		}
		reqs[i] = req{Version: "2.0", ID: i, Method: c.Method, Params: p}
	}
	body, err := json.Marshal(reqs)
	if err != nil {
		return nil, fmt.Errorf("coretest: rpc: %w", err)
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://127.0.0.1:"+strconv.Itoa(int(n.RPCPort))+"/", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("coretest: rpc: %w", err)
	}
	hr.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString(bytes.TrimSpace(cookie)))
	hr.Header.Set("Content-Type", "application/json")
	resp, err := n.http.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("coretest: rpc: %w", err)
	}
	defer resp.Body.Close()
	var answers []struct {
		ID     int             `json:"id"`
		Result json.RawMessage `json:"result"`
		Error  *RPCError       `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&answers); err != nil {
		return nil, fmt.Errorf("coretest: rpc: HTTP %s: %w", resp.Status, err)
	}
	out := make([]Result, len(calls))
	seen := 0
	for _, a := range answers {
		if a.ID < 0 || a.ID >= len(calls) {
			return nil, fmt.Errorf("coretest: rpc: answer with unknown id %d", a.ID)
		}
		out[a.ID].Result = a.Result
		if a.Error != nil {
			a.Error.Method = calls[a.ID].Method
			out[a.ID].Err = a.Error
		}
		seen++
	}
	if seen != len(calls) {
		return nil, fmt.Errorf("coretest: rpc: %d answers to %d calls", seen, len(calls))
	}
	return out, nil
}

func (n *Node) cliBatch(ctx context.Context, calls []Call) ([]Result, error) {
	out := make([]Result, len(calls))
	for i, c := range calls {
		args := []string{"-regtest", "-datadir=" + n.DataDir, "-rpcport=" + strconv.Itoa(int(n.RPCPort)), c.Method}
		for _, p := range c.Params {
			args = append(args, fmt.Sprint(p))
		}
		cmd := n.command(ctx, n.Binaries.CLI, args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("coretest: bitcoin-cli %s: %w", c.Method, ctx.Err())
			}
			out[i].Err = fmt.Errorf("coretest: bitcoin-cli %s: %v: %s", c.Method, err, strings.TrimSpace(stderr.String()))
			continue
		}
		res := bytes.TrimSpace(stdout.Bytes())
		if !json.Valid(res) {
			res, _ = json.Marshal(string(res)) // a bare string answer
		}
		out[i].Result = res
	}
	return out, nil
}

// AddPeerAddresses teaches bitcoind addrs with addpeeraddress and returns
// the ones its address manager took (it refuses one whose slot in its bucket
// is taken, for example).
func (n *Node) AddPeerAddresses(ctx context.Context, addrs []netip.AddrPort) ([]netip.AddrPort, error) {
	calls := make([]Call, len(addrs))
	for i, a := range addrs {
		calls[i] = Call{Method: "addpeeraddress", Params: []any{a.Addr().String(), a.Port()}}
	}
	res, err := n.Batch(ctx, calls)
	if err != nil {
		return nil, err
	}
	var added []netip.AddrPort
	for i, r := range res {
		if r.Err != nil {
			return added, r.Err
		}
		var ok struct {
			Success bool `json:"success"`
		}
		if err := json.Unmarshal(r.Result, &ok); err != nil {
			return added, fmt.Errorf("coretest: addpeeraddress %s: %w", addrs[i], err)
		}
		if ok.Success {
			added = append(added, addrs[i])
		}
	}
	return added, nil
}

// PeerInfo is the part of getpeerinfo's answer the tests read.
type PeerInfo struct {
	ID              int                `json:"id"`
	Addr            string             `json:"addr"`
	SubVer          string             `json:"subver"`
	Version         int                `json:"version"`
	Inbound         bool               `json:"inbound"`
	Transport       string             `json:"transport_protocol_type"`
	SessionID       string             `json:"session_id"`
	PingTime        *float64           `json:"pingtime"`
	PingWait        *float64           `json:"pingwait"`
	BytesRecvPerMsg map[string]float64 `json:"bytesrecv_per_msg"`
	BytesSentPerMsg map[string]float64 `json:"bytessent_per_msg"`
}

// Peers returns getpeerinfo.
func (n *Node) Peers(ctx context.Context) ([]PeerInfo, error) {
	res, err := n.RPC(ctx, "getpeerinfo")
	if err != nil {
		return nil, err
	}
	var peers []PeerInfo
	if err := json.Unmarshal(res, &peers); err != nil {
		return nil, fmt.Errorf("coretest: getpeerinfo: %w", err)
	}
	return peers, nil
}

// Start is StartNode for tests: it finds bitcoind with Binary (skipping or
// failing as Binary does), fails the test when bitcoind does not become
// ready, and registers a cleanup that stops it and removes its directory.
func Start(tb testing.TB, opts Options) *Node {
	tb.Helper()
	if opts.Binaries.Bitcoind == "" {
		opts.Binaries = Binary(tb)
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
