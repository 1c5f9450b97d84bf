package coretest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// probeEnv, when set in the environment of this test binary, makes it a
// probe instead of a test run (see probeMain): the netns test re-executes
// itself with it inside the namespace, so that the independent client runs
// in a process inside the namespace, as the rules require.
const probeEnv = "CORETEST_PROBE"

// probeMain asks every address in $CORETEST_PROBE (comma-separated) for
// addresses with GetAddr over addrv2, one fresh connection each, and prints
// a JSON object from address to answer. It refuses to run outside a network
// namespace of its own.
func probeMain() int {
	if !InForeignNetns() {
		fmt.Fprintln(os.Stderr, "coretest probe: not inside a separate network namespace; refusing to dial")
		return 2
	}
	out := map[string][]string{}
	for _, s := range strings.Split(os.Getenv(probeEnv), ",") {
		a, err := netip.ParseAddrPort(s)
		if err != nil {
			fmt.Fprintln(os.Stderr, "coretest probe:", err)
			return 2
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		got, err := GetAddr(ctx, a, true)
		cancel()
		if err != nil {
			fmt.Fprintln(os.Stderr, "coretest probe:", err)
			return 1
		}
		list := []string{}
		for _, g := range got {
			list = append(list, g.String())
		}
		out[s] = list
	}
	json.NewEncoder(os.Stdout).Encode(out)
	return 0
}

// netns is a network namespace created by a test.
type netns struct{ name string }

// newNetns creates a uniquely named namespace with its loopback up and the
// given addresses on it, and registers a cleanup that kills every process
// still in it and deletes it. Without root or ip(8) the test skips (fails
// under CI=true).
func newNetns(t *testing.T, addrs []netip.Addr) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		requireOrSkip(t, "network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		requireOrSkip(t, "no ip(8) on PATH")
	}
	ns := &netns{name: fmt.Sprintf("btcpipe-core-%d-%x", os.Getpid(), rand.Uint32())}
	if out, err := exec.Command("ip", "netns", "add", ns.name).CombinedOutput(); err != nil {
		requireOrSkip(t, fmt.Sprintf("ip netns add: %v: %s", err, bytes.TrimSpace(out)))
	}
	t.Cleanup(func() { ns.destroy(t) })
	ns.ip(t, "link", "set", "lo", "up")
	for _, a := range addrs {
		ns.ip(t, "addr", "add", a.String()+"/32", "dev", "lo")
	}
	return ns
}

func requireOrSkip(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("required under CI=true: %s", why)
	}
	t.Skip(why)
}

// ip runs `ip -n NAME args...`.
func (ns *netns) ip(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"-n", ns.name}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip -n %s %s: %v: %s", ns.name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
}

// pids returns the processes running in the namespace.
func (ns *netns) pids() []int {
	out, _ := exec.Command("ip", "netns", "pids", ns.name).Output()
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if p, err := strconv.Atoi(f); err == nil {
			pids = append(pids, p)
		}
	}
	return pids
}

// destroy kills what is left in the namespace (SIGTERM, then SIGKILL) and
// deletes it.
func (ns *netns) destroy(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		pids := ns.pids()
		if len(pids) == 0 {
			break
		}
		t.Logf("netns %s: sending %v to leftover pids %v", ns.name, sig, pids)
		for _, p := range pids {
			syscall.Kill(p, sig)
		}
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && len(ns.pids()) > 0; {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if out, err := exec.Command("ip", "netns", "del", ns.name).CombinedOutput(); err != nil {
		t.Errorf("ip netns del %s: %v: %s", ns.name, err, bytes.TrimSpace(out))
	}
}

// exec returns a command running bin inside the namespace.
func (ns *netns) command(ctx context.Context, bin string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.name, bin}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// crawlLine is one JSON line of `btcpipe crawl` (a node record or the
// summary), with the fields the test reads.
type crawlLine struct {
	Type          string `json:"type"`
	Addr          string `json:"addr"`
	Source        string `json:"source"`
	Outcome       string `json:"outcome"`
	Error         string `json:"error"`
	Reason        string `json:"reason"`
	UserAgent     string `json:"user_agent"`
	Protocol      int    `json:"protocol"`
	AddrsReturned int    `json:"addrs_returned"`
	Records       int    `json:"records"`
	Interrupted   bool   `json:"interrupted"`
}

// TestCoreNetworkCrawl builds a network of Bitcoin Core nodes on public-
// looking addresses that exist only inside a network namespace, teaches each
// the others and some dead addresses, crawls it with `btcpipe crawl` run
// inside the namespace, and checks the crawl recorded exactly the nodes
// reachable through the answers each node gives, which a separate client
// (this test binary, re-run inside the namespace) finds first.
//
// Core answers a getaddr with 23 % of what it knows, so with one address per
// node each answer would hold about 1.6 live ones and a crawl would rarely get
// far. So each of the 8 nodes listens on 3 addresses, 11.(10i+k).0.1 for k =
// 0, 1, 2: one /16 each, so that Core's address manager puts them in
// different buckets and takes every one (addresses of one /16 taught with
// addpeeraddress share a bucket and can collide). Each node knows the 21
// addresses of the others and 7 dead ones: 11.200.0.1 and 11.201.0.1 are on
// the namespace's loopback with no listener (refused), 11.210.0.1–11.214.0.1
// have no route (unreachable). That makes 28 entries and answers of
// floor(28 × 23 %) = 6, one cached answer per listening address.
func TestCoreNetworkCrawl(t *testing.T) {
	bins := Binary(t)
	const nodes, binds = 8, 3
	var live, refused, unreachable []netip.Addr
	owner := map[netip.Addr]int{}
	for i := 1; i <= nodes; i++ {
		for k := range binds {
			a := netip.AddrFrom4([4]byte{11, byte(10*i + k), 0, 1})
			live = append(live, a)
			owner[a] = i - 1
		}
	}
	refused = []netip.Addr{netip.MustParseAddr("11.200.0.1"), netip.MustParseAddr("11.201.0.1")}
	for i := 210; i <= 214; i++ {
		unreachable = append(unreachable, netip.AddrFrom4([4]byte{11, byte(i), 0, 1}))
	}
	ns := newNetns(t, append(slices.Clone(live), refused...))
	btcpipeBinary(t)
	ctx := testContext(t, 3*time.Minute)

	// Start the nodes in parallel; their cleanups stop them before the
	// namespace's cleanup (registered earlier) deletes it.
	cores := make([]*Node, nodes)
	errs := make([]error, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() {
			cores[i], errs[i] = StartNode(ctx, Options{Binaries: bins, Netns: ns.name, Bind: live[i*binds],
				MoreBinds: live[i*binds+1 : (i+1)*binds], P2PPort: DefaultP2PPort, RPCPort: uint16(19000 + i)})
		})
	}
	wg.Wait()
	for i, n := range cores {
		if n != nil {
			t.Cleanup(func() {
				if err := n.Close(); err != nil {
					t.Logf("stopping %v: %v", n, err)
				}
			})
		}
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
	}
	subver := ""
	if res, err := cores[0].RPC(ctx, "getnetworkinfo"); err != nil {
		t.Fatal(err)
	} else {
		var ni struct {
			SubVersion string `json:"subversion"`
		}
		json.Unmarshal(res, &ni)
		subver = ni.SubVersion
	}

	dead := append(slices.Clone(refused), unreachable...)
	wantAnswer := map[string]int{}
	for i, n := range cores {
		var teach []netip.AddrPort
		for _, a := range live {
			if owner[a] != i {
				teach = append(teach, netip.AddrPortFrom(a, DefaultP2PPort))
			}
		}
		for _, a := range dead {
			teach = append(teach, netip.AddrPortFrom(a, DefaultP2PPort))
		}
		added, err := n.AddPeerAddresses(ctx, teach)
		if err != nil {
			t.Fatal(err)
		}
		// A slot collision in Core's address manager is possible (rarely,
		// since each address has its own /16): the answer follows what it
		// holds.
		if len(added) != len(teach) {
			t.Logf("%v took %d of %d addresses", n, len(added), len(teach))
		}
		res, err := n.RPC(ctx, "getaddrmaninfo")
		if err != nil {
			t.Fatal(err)
		}
		var am struct {
			All struct {
				Total int `json:"total"`
			} `json:"all_networks"`
		}
		if err := json.Unmarshal(res, &am); err != nil {
			t.Fatal(err)
		}
		if am.All.Total != len(added) {
			t.Fatalf("%v holds %d addresses, took %d", n, am.All.Total, len(added))
		}
		for _, a := range live[i*binds : (i+1)*binds] {
			wantAnswer[netip.AddrPortFrom(a, DefaultP2PPort).String()] = am.All.Total * 23 / 100
		}
	}

	// The oracle: each node's answer, asked from inside the namespace over
	// a separate connection. Core answers every IPv4 client on the same
	// listening address from one cache for a day, so the crawl gets the same.
	var targets []string
	for _, a := range live {
		targets = append(targets, netip.AddrPortFrom(a, DefaultP2PPort).String())
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	probe := ns.command(ctx, exe)
	probe.Env = append(os.Environ(), probeEnv+"="+strings.Join(targets, ","))
	var probeErr bytes.Buffer
	probe.Stderr = &probeErr
	out, err := probe.Output()
	if err != nil {
		t.Fatalf("probe inside the namespace: %v: %s", err, probeErr.String())
	}
	var answers map[string][]string
	if err := json.Unmarshal(out, &answers); err != nil {
		t.Fatalf("probe output %q: %v", out, err)
	}
	for _, tgt := range targets {
		if got := len(answers[tgt]); got != wantAnswer[tgt] {
			t.Errorf("%s answered the probe %d addresses, want floor(23 %% of what it holds) = %d", tgt, got, wantAnswer[tgt])
		}
	}

	// Expected crawl: from the seeds, every address in the answer of every
	// live node reached.
	isLive := map[string]bool{}
	for _, tgt := range targets {
		isLive[tgt] = true
	}
	seeds := targets[:1]
	want := map[string]bool{}
	queue := slices.Clone(seeds)
	for _, s := range seeds {
		want[s] = true
	}
	for len(queue) > 0 {
		a := queue[0]
		queue = queue[1:]
		if !isLive[a] {
			continue
		}
		for _, b := range answers[a] {
			if !want[b] {
				want[b] = true
				queue = append(queue, b)
			}
		}
	}

	crawlOut := t.TempDir() + "/crawl.jsonl"
	crawl := ns.command(ctx, btcpipeBinary(t), "crawl")
	crawl.Env = cleanEnv("BTCPIPE_NETWORK=regtest", "BTCPIPE_LOG_FORMAT=json",
		"BTCPIPE_SEEDS="+strings.Join(seeds, ","), "BTCPIPE_CRAWL_ALLOW=11.0.0.0/8",
		"BTCPIPE_CRAWL_OUT="+crawlOut, "BTCPIPE_CRAWL_QUIET=1s", "BTCPIPE_CRAWL_PROGRESS_INTERVAL=0")
	start := time.Now()
	if logOut, err := crawl.CombinedOutput(); err != nil {
		t.Fatalf("btcpipe crawl: %v\n%s", err, logOut)
	}
	t.Logf("crawl of %d expected addresses took %v", len(want), time.Since(start).Round(time.Millisecond))

	f, err := os.Open(crawlOut)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := map[string]crawlLine{}
	var summary *crawlLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l crawlLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("crawl line %q: %v", sc.Text(), err)
		}
		switch l.Type {
		case "node":
			if _, dup := got[l.Addr]; dup {
				t.Errorf("%s recorded twice", l.Addr)
			}
			got[l.Addr] = l
		case "summary":
			summary = &l
		}
	}
	if summary == nil || summary.Interrupted || summary.Records != len(got) {
		t.Errorf("summary %+v, want one, not interrupted, counting %d records", summary, len(got))
	}

	var gotAddrs, wantAddrs []string
	for a := range got {
		gotAddrs = append(gotAddrs, a)
	}
	for a := range want {
		wantAddrs = append(wantAddrs, a)
	}
	slices.Sort(gotAddrs)
	slices.Sort(wantAddrs)
	if !slices.Equal(gotAddrs, wantAddrs) {
		t.Errorf("crawl recorded %v\nwant (reachable through the answers) %v", gotAddrs, wantAddrs)
	}
	reached := 0
	reachedNodes := map[int]bool{}
	for a, l := range got {
		ap, _ := netip.ParseAddrPort(a)
		switch {
		case isLive[a]:
			reached++
			reachedNodes[owner[ap.Addr()]] = true
			if l.Outcome != "reachable" || l.UserAgent != subver || l.Protocol != 70017 {
				t.Errorf("%s: outcome %q user agent %q protocol %d, want reachable %s 70017", a, l.Outcome, l.UserAgent, l.Protocol, subver)
			}
			if l.AddrsReturned != len(answers[a]) {
				t.Errorf("%s: returned %d addresses to the crawl, %d to the probe", a, l.AddrsReturned, len(answers[a]))
			}
		case slices.Contains(refused, ap.Addr()):
			if l.Outcome != "refused" {
				t.Errorf("%s (no listener): outcome %q, want refused", a, l.Outcome)
			}
		case slices.Contains(unreachable, ap.Addr()):
			if l.Outcome != "unreachable" {
				t.Errorf("%s (no route): outcome %q (%s), want unreachable", a, l.Outcome, l.Error)
			}
		default:
			t.Errorf("%s: recorded but never taught to any node", a)
		}
		if !slices.Contains(seeds, a) && l.Source != "" && !isLive[l.Source] {
			t.Errorf("%s: source %q is not a node", a, l.Source)
		}
	}
	t.Logf("crawl: %d records, %d of %d listening addresses reachable, %d of %d Core nodes", len(got), reached, len(live), len(reachedNodes), nodes)
	for _, n := range cores {
		for _, c := range n.Complaints() {
			t.Errorf("%v complained: %s", n, c)
		}
	}
}
