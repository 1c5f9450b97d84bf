package coretest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/wire/v2"
	"go.uber.org/goleak"

	"github.com/btcpipe/btcpipe/internal/btcdtest"
	"github.com/btcpipe/btcpipe/internal/version"
)

func TestMain(m *testing.M) {
	if os.Getenv(probeEnv) != "" {
		os.Exit(probeMain())
	}
	code := m.Run()
	if shared.node != nil {
		shared.node.Close()
	}
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// seededAddrs is how many routable addresses the shared node is taught
// before anyone connects: enough that 23 % of them (92) is well above the
// handful a mistake would leave.
const seededAddrs = 400

// shared is the one bitcoind the loopback tests of this package share. It
// is taught its addresses before any peer connects, so that its getaddr
// cache (built on the first getaddr, kept for a day) holds 23 % of all of
// them whichever test asks first.
var shared struct {
	once  sync.Once
	node  *Node
	added map[netip.AddrPort]bool
	err   error
}

func sharedNode(t *testing.T) *Node {
	t.Helper()
	bins := Binary(t)
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		n, err := StartNode(ctx, Options{Binaries: bins})
		if err != nil {
			shared.err = err
			return
		}
		shared.node = n
		added, err := n.AddPeerAddresses(ctx, btcdtest.RoutableAddrs(seededAddrs, 14))
		if err != nil {
			shared.err = err
			return
		}
		shared.added = make(map[netip.AddrPort]bool, len(added))
		for _, a := range added {
			shared.added[a] = true
		}
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.node
}

func testContext(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// ourPeer polls getpeerinfo until an inbound peer with user agent ua shows,
// and until ok (if given) holds for it.
func ourPeer(ctx context.Context, n *Node, ua string, ok func(PeerInfo) bool) (PeerInfo, error) {
	var last []PeerInfo
	for {
		peers, err := n.Peers(ctx)
		if err != nil {
			return PeerInfo{}, err
		}
		last = peers
		for _, p := range peers {
			if p.Inbound && p.SubVer == ua && (ok == nil || ok(p)) {
				return p, nil
			}
		}
		select {
		case <-ctx.Done():
			j, _ := json.MarshalIndent(last, "", "  ")
			return PeerInfo{}, fmt.Errorf("%w: ua %s: %v; getpeerinfo:\n%s", errNoPeer, ua, ctx.Err(), j)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// checkNoComplaints fails the test for every debug.log line in which Core
// objects to the peer with the given id.
func checkNoComplaints(t *testing.T, n *Node, id int) {
	t.Helper()
	tag := "peer=" + strconv.Itoa(id)
	for _, l := range n.Complaints() {
		if strings.Contains(l, tag+" ") || strings.HasSuffix(l, tag) || strings.Contains(l, tag+",") {
			t.Errorf("Core complained about us (%s): %s", tag, l)
		}
	}
}

// TestCoreHandshake: with the default transport (auto, which reaches
// Core over BIP324 v2) and with v1, Core's getpeerinfo shows our user
// agent and protocol, its log shows the inbound peer on that transport and
// no complaint, and SIGTERM ends btcpipe within 2 s.
func TestCoreHandshake(t *testing.T) {
	t.Parallel()
	n := sharedNode(t)
	btcpipeBinary(t) // built before the clock starts
	for _, tc := range []struct{ setting, want string }{{"", "v2"}, {"v1", "v1"}} {
		t.Run("transport="+tc.want, func(t *testing.T) {
			ctx := testContext(t, 30*time.Second)
			ua := "/btcpipe-hs-" + tc.want + ":" + version.Version + "/"
			env := []string{"BTCPIPE_PEER=" + n.Addr.String(), "BTCPIPE_USER_AGENT=" + ua}
			if tc.setting != "" {
				env = append(env, "BTCPIPE_TRANSPORT="+tc.setting)
			}
			r := startNode(t, env...)
			hs, err := r.wait(ctx, "the handshake", msgHas("handshake complete ("+tc.want+")"))
			if err != nil {
				t.Fatal(err)
			}
			if got := hs.int("protocol"); got != 70017 {
				t.Errorf("logged protocol %d, want Core's 70017", got)
			}
			if !strings.Contains(hs.msg(), "/Satoshi:") {
				t.Errorf("handshake line %q does not name Core's user agent", hs.msg())
			}
			p, err := ourPeer(ctx, n, ua, nil)
			if err != nil {
				t.Fatal(err)
			}
			if p.Version != 70016 || p.Transport != tc.want {
				t.Errorf("Core sees protocol %d over %s, want 70016 over %s", p.Version, p.Transport, tc.want)
			}
			// Core logs the peer as connected once it has processed our verack.
			if err := n.WaitLog(ctx, "New inbound peer connected: transport: "+tc.want+", version: 70016, peer="+strconv.Itoa(p.ID)); err != nil {
				t.Error(err)
			}
			if err := r.stop(2 * time.Second); err != nil {
				t.Errorf("btcpipe node after SIGTERM: %v", err)
			}
			if err := n.WaitLog(ctx, "socket closed, disconnecting peer="+strconv.Itoa(p.ID)); err != nil {
				t.Error(err)
			}
			checkNoComplaints(t, n, p.ID)
		})
	}
}

// TestCoreV1ToV2Node: Core runs with -v2transport=1 (its default, and so
// here): it advertises NODE_P2P_V2 and must still take our v1 connection.
func TestCoreV1ToV2Node(t *testing.T) {
	t.Parallel()
	n := sharedNode(t)
	btcpipeBinary(t) // built before the clock starts
	ctx := testContext(t, 30*time.Second)
	info, err := n.RPC(ctx, "getnetworkinfo")
	if err != nil {
		t.Fatal(err)
	}
	var ni struct {
		Services []string `json:"localservicesnames"`
	}
	if err := json.Unmarshal(info, &ni); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(ni.Services, "P2P_V2") {
		t.Fatalf("Core's services %v lack P2P_V2: it does not run with -v2transport=1", ni.Services)
	}
	const ua = "/btcpipe-v1:0.1/"
	r := startNode(t, "BTCPIPE_PEER="+n.Addr.String(), "BTCPIPE_USER_AGENT="+ua, "BTCPIPE_TRANSPORT=v1")
	hs, err := r.wait(ctx, "the handshake", msgHas("handshake complete"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(hs.msg(), "NODE_P2P_V2") {
		t.Errorf("handshake line %q does not show Core's NODE_P2P_V2", hs.msg())
	}
	p, err := ourPeer(ctx, n, ua, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Transport != "v1" || p.SessionID != "" {
		t.Errorf("Core's view of us: transport %q session %q, want v1 and no session id", p.Transport, p.SessionID)
	}
	if _, err := r.wait(ctx, "an answer to getaddr", msgHas("received ")); err != nil {
		t.Error(err)
	}
	checkNoComplaints(t, n, p.ID)
}

// TestCorePing: Core pings right after verack; our pong must carry its
// nonce, which Core shows by setting pingtime (it does only for a pong with
// the nonce it expects), and Core must answer our ping.
func TestCorePing(t *testing.T) {
	t.Parallel()
	n := sharedNode(t)
	btcpipeBinary(t) // built before the clock starts
	ctx := testContext(t, 30*time.Second)
	const ua = "/btcpipe-ping:0.1/"
	r := startNode(t, "BTCPIPE_PEER="+n.Addr.String(), "BTCPIPE_USER_AGENT="+ua)
	if _, err := r.wait(ctx, "the handshake", msgHas("handshake complete")); err != nil {
		t.Fatal(err)
	}
	p, err := ourPeer(ctx, n, ua, func(p PeerInfo) bool { return p.PingTime != nil })
	if err != nil {
		t.Fatalf("Core never saw our pong to its ping: %v", err)
	}
	if *p.PingTime <= 0 || *p.PingTime > 5 {
		t.Errorf("Core's pingtime %v s, want a loopback round trip", *p.PingTime)
	}
	// The default transport reaches Core over v2: a pong is a 29-byte
	// packet (3 length, 1 header, 1 short id, 8 nonce, 16 tag).
	if got := p.BytesRecvPerMsg["pong"]; got < 29 || p.Transport != "v2" {
		t.Errorf("Core received %v bytes of pong over %s, want at least one v2 packet (29 bytes)", got, p.Transport)
	}
	id := strconv.Itoa(p.ID)
	for _, s := range []string{"sending ping (8 bytes) peer=" + id, "received: pong (8 bytes) peer=" + id} {
		if err := n.WaitLog(ctx, s); err != nil {
			t.Error(err)
		}
	}
	// Our own ping, answered by Core with our nonce (btcpipe logs the
	// round trip only for a pong with the nonce it sent).
	if _, err := r.wait(ctx, "a pong from Core", msgHas("pong: round trip")); err != nil {
		t.Error(err)
	}
	if err := n.WaitLog(ctx, "sending pong (8 bytes) peer="+id); err != nil {
		t.Error(err)
	}
	checkNoComplaints(t, n, p.ID)
}

// TestCoreGetAddrCount: after addpeeraddress of seededAddrs routable
// addresses, btcpipe's getaddr over addrv2 yields exactly what Core answers
// an independent client (btcd's wire package, its own connection): the
// same cached answer of floor(23 % of the address manager), every address
// one we added.
func TestCoreGetAddrCount(t *testing.T) {
	t.Parallel()
	n := sharedNode(t)
	btcpipeBinary(t) // built before the clock starts
	ctx := testContext(t, 30*time.Second)

	info, err := n.RPC(ctx, "getaddrmaninfo")
	if err != nil {
		t.Fatal(err)
	}
	var am struct {
		All struct {
			Total int `json:"total"`
		} `json:"all_networks"`
	}
	if err := json.Unmarshal(info, &am); err != nil {
		t.Fatal(err)
	}
	if am.All.Total != len(shared.added) {
		t.Fatalf("Core's address manager holds %d addresses, addpeeraddress took %d", am.All.Total, len(shared.added))
	}
	if len(shared.added) < seededAddrs*9/10 {
		t.Fatalf("Core took only %d of %d addresses", len(shared.added), seededAddrs)
	}
	want := min(1000, am.All.Total*23/100)

	oracle, err := GetAddr(ctx, n.Addr, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(oracle) != want {
		t.Fatalf("Core answered the independent client %d addresses, want floor(%d × 23 %%) = %d", len(oracle), am.All.Total, want)
	}

	const ua = "/btcpipe-getaddr:0.1/"
	record := t.TempDir() + "/inbound.bin"
	r := startNode(t, "BTCPIPE_PEER="+n.Addr.String(), "BTCPIPE_USER_AGENT="+ua, "BTCPIPE_RECORD="+record)
	if _, err := r.wait(ctx, "an answer to getaddr", msgHas("received ")); err != nil {
		t.Fatal(err)
	}
	// Everything Core sends after getaddr precedes its pong to our ping,
	// which btcpipe sends at the handshake too.
	if _, err := r.wait(ctx, "a pong from Core", msgHas("pong: round trip")); err != nil {
		t.Fatal(err)
	}
	p, err := ourPeer(ctx, n, ua, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.stop(2 * time.Second); err != nil {
		t.Errorf("btcpipe node after SIGTERM: %v", err)
	}
	got, unique := 0, 0
	for _, l := range r.all(msgHas("received ")) {
		got += l.int("peers")
		unique = l.int("unique")
	}
	if got != len(oracle) {
		t.Errorf("btcpipe received %d addresses, Core answered the independent client %d", got, len(oracle))
	}
	if unique != len(oracle) {
		t.Errorf("btcpipe counts %d unique, want %d", unique, len(oracle))
	}

	// What Core sent btcpipe, read back from btcpipe's recording with btcd's
	// decoder: the same addresses as the oracle's, every one we added.
	recorded, msgs, err := recordedAddrs(record)
	if err != nil {
		t.Fatal(err)
	}
	if msgs["addr"] != 0 || msgs["addrv2"] != 1 {
		t.Errorf("Core sent %d addr and %d addrv2 messages, want one addrv2", msgs["addr"], msgs["addrv2"])
	}
	sortAddrs(recorded)
	sortAddrs(oracle)
	if !slices.Equal(recorded, oracle) {
		t.Errorf("btcpipe was sent %d addresses, the independent client %d; they differ", len(recorded), len(oracle))
	}
	for _, a := range recorded {
		if !shared.added[a] {
			t.Errorf("Core sent %v, which we never added", a)
		}
	}
	t.Logf("Core's address manager %d, answer %d (floor 23 %%), btcpipe received %d, all of them added by us", am.All.Total, len(oracle), got)
	checkNoComplaints(t, n, p.ID)
}

func sortAddrs(a []netip.AddrPort) { slices.SortFunc(a, netip.AddrPort.Compare) }

// recordedAddrs decodes a BTCPIPE_RECORD file (the raw inbound v1 stream)
// with btcd's wire package and returns the addresses of its addr and addrv2
// messages and a count of messages by command.
func recordedAddrs(path string) ([]netip.AddrPort, map[string]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	var out []netip.AddrPort
	count := map[string]int{}
	for {
		msg, _, err := wire.ReadMessage(f, ProtocolVersion, wire.TestNet)
		if err == io.EOF {
			return out, count, nil
		}
		if err != nil {
			if isUnknown(err) {
				count["unknown"]++
				continue
			}
			return nil, nil, fmt.Errorf("decoding %s: %w", path, err)
		}
		count[msg.Command()]++
		switch m := msg.(type) {
		case *wire.MsgAddrV2:
			for _, na := range m.AddrList {
				if l := na.ToLegacy(); l != nil && l.IP != nil {
					a, _ := netip.AddrFromSlice(l.IP)
					out = append(out, netip.AddrPortFrom(a.Unmap(), na.Port))
				}
			}
		case *wire.MsgAddr:
			for _, na := range m.AddrList {
				a, _ := netip.AddrFromSlice(na.IP)
				out = append(out, netip.AddrPortFrom(a.Unmap(), na.Port))
			}
		}
	}
}
