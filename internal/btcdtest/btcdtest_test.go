package btcdtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/btcsuite/btcd/wire/v2"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testTimeout bounds each network step of a test.
const testTimeout = 30 * time.Second

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func TestIsRoutable(t *testing.T) {
	tests := []struct {
		ip   string
		want bool
	}{
		{ip: "1.2.3.4", want: true},
		{ip: "8.8.8.8", want: true},
		{ip: "223.255.255.254", want: true},
		{ip: "100.63.255.255", want: true},
		{ip: "100.128.0.0", want: true},
		{ip: "172.15.255.255", want: true},
		{ip: "172.32.0.0", want: true},
		{ip: "198.17.255.255", want: true},
		{ip: "198.20.0.0", want: true},
		{ip: "::ffff:1.2.3.4", want: true},
		{ip: "0.1.2.3", want: false},
		{ip: "10.1.2.3", want: false},
		{ip: "100.64.0.1", want: false},
		{ip: "100.127.255.255", want: false},
		{ip: "127.0.0.1", want: false},
		{ip: "169.254.1.1", want: false},
		{ip: "172.16.0.1", want: false},
		{ip: "172.31.255.255", want: false},
		{ip: "192.0.2.1", want: false},
		{ip: "192.168.1.1", want: false},
		{ip: "198.18.0.1", want: false},
		{ip: "198.19.255.255", want: false},
		{ip: "198.51.100.7", want: false},
		{ip: "203.0.113.9", want: false},
		{ip: "224.0.0.1", want: false},
		{ip: "239.255.255.255", want: false},
		{ip: "240.0.0.1", want: false},
		{ip: "255.255.255.255", want: false},
		{ip: "2001:4860::8888", want: false}, // IPv6 is not generated
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			if got := IsRoutable(netip.MustParseAddr(tt.ip)); got != tt.want {
				t.Errorf("IsRoutable(%s) = %v, want %v", tt.ip, got, tt.want)
			}
		})
	}
}

func TestRoutableAddrs(t *testing.T) {
	if got := len(allRoutableGroups()); got != MaxRoutableAddrs {
		t.Fatalf("%d routable /16s, MaxRoutableAddrs = %d", got, MaxRoutableAddrs)
	}
	tests := []struct {
		name string
		n    int
		seed int64
	}{
		{name: "none", n: 0, seed: 1},
		{name: "one", n: 1, seed: 1},
		{name: "demo", n: 400, seed: 1},
		{name: "other seed", n: 400, seed: 42},
		{name: "all", n: MaxRoutableAddrs, seed: 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := RoutableAddrs(tt.n, tt.seed)
			if len(got) != tt.n {
				t.Fatalf("len = %d, want %d", len(got), tt.n)
			}
			groups := make(map[[2]byte]bool, tt.n)
			for _, a := range got {
				ip := a.Addr().As4()
				if !a.Addr().Is4() || !IsRoutable(a.Addr()) {
					t.Fatalf("%v is not a routable IPv4 address", a)
				}
				if a.Port() != SeedPort {
					t.Fatalf("%v: port %d, want %d", a, a.Port(), SeedPort)
				}
				g := [2]byte{ip[0], ip[1]}
				if groups[g] {
					t.Fatalf("%v: /16 %d.%d used twice", a, g[0], g[1])
				}
				groups[g] = true
			}
			again := RoutableAddrs(tt.n, tt.seed)
			for i := range got {
				if got[i] != again[i] {
					t.Fatalf("second call differs at %d: %v, want %v", i, again[i], got[i])
				}
			}
			if tt.n > 0 {
				prefix := RoutableAddrs(tt.n/2, tt.seed)
				for i := range prefix {
					if prefix[i] != got[i] {
						t.Fatalf("RoutableAddrs(%d) is not a prefix: at %d %v, want %v", tt.n/2, i, prefix[i], got[i])
					}
				}
			}
		})
	}
	if a, b := RoutableAddrs(50, 1), RoutableAddrs(50, 2); a[0] == b[0] && a[1] == b[1] {
		t.Errorf("seeds 1 and 2 give the same addresses: %v", a[:2])
	}
	defer func() {
		if recover() == nil {
			t.Errorf("RoutableAddrs(%d) did not panic", MaxRoutableAddrs+1)
		}
	}()
	RoutableAddrs(MaxRoutableAddrs+1, 1)
}

func TestCheckExtraArgs(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr bool
	}{
		{args: nil},
		{args: []string{"--debuglevel=AMGR=trace"}},
		{args: []string{"-d", "debug"}},
		{args: []string{"--maxpeers=3", "--nobanning", "--blocksonly"}},
		{args: []string{"--connect=1.2.3.4"}, wantErr: true},
		{args: []string{"--addpeer", "1.2.3.4"}, wantErr: true},
		{args: []string{"-a", "1.2.3.4"}, wantErr: true},
		{args: []string{"-a1.2.3.4"}, wantErr: true},
		{args: []string{"--listen=0.0.0.0:18444"}, wantErr: true},
		{args: []string{"--proxy=127.0.0.1:9050"}, wantErr: true},
		{args: []string{"--upnp"}, wantErr: true},
		{args: []string{"--externalip=1.2.3.4"}, wantErr: true},
		{args: []string{"--testnet"}, wantErr: true},
		{args: []string{"--datadir=/tmp/x"}, wantErr: true},
		{args: []string{"-C/etc/btcd.conf"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			err := checkExtraArgs(tt.args)
			if (err != nil) != tt.wantErr {
				t.Errorf("checkExtraArgs(%q) = %v, want error: %v", tt.args, err, tt.wantErr)
			}
		})
	}
}

// fakeTB records what requireBinary does with a testing.TB.
type fakeTB struct {
	testing.TB
	fatal, skip string
}

func (f *fakeTB) Helper()                        {}
func (f *fakeTB) Fatalf(format string, a ...any) { f.fatal = fmt.Sprintf(format, a...) }
func (f *fakeTB) Skipf(format string, a ...any)  { f.skip = fmt.Sprintf(format, a...) }

func TestRequireBinary(t *testing.T) {
	missing := errors.New("no btcd here")
	tests := []struct {
		name      string
		bin       string
		err       error
		ci        bool
		want      string
		wantFatal bool
		wantSkip  bool
	}{
		{name: "found", bin: "/x/btcd", want: "/x/btcd"},
		{name: "found under CI", bin: "/x/btcd", ci: true, want: "/x/btcd"},
		{name: "missing skips", err: missing, wantSkip: true},
		{name: "missing under CI fails", err: missing, ci: true, wantFatal: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeTB{TB: t}
			got := requireBinary(f, tt.bin, tt.err, tt.ci)
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if (f.fatal != "") != tt.wantFatal || (f.skip != "") != tt.wantSkip {
				t.Errorf("fatal %q, skip %q; want fatal %v, skip %v", f.fatal, f.skip, tt.wantFatal, tt.wantSkip)
			}
			if tt.wantSkip && !strings.Contains(f.skip, "make btcd") {
				t.Errorf("skip message %q does not say how to install btcd", f.skip)
			}
		})
	}
}

func TestStart(t *testing.T) {
	for _, network := range []string{Regtest, Simnet} {
		t.Run(network, func(t *testing.T) {
			begin := time.Now()
			n := Start(t, Options{Network: network})
			t.Logf("%v ready in %v", n, time.Since(begin))

			if !n.Addr.Addr().IsLoopback() || n.Addr.Port() == 0 {
				t.Errorf("Addr = %v, want 127.0.0.1 and a port", n.Addr)
			}
			if !n.Running() || n.Pid() == 0 {
				t.Fatalf("Running() = %v, Pid() = %d after Start", n.Running(), n.Pid())
			}
			c, err := Dial(testContext(t), n.Addr, network)
			if err != nil {
				t.Fatal(err)
			}
			if c.Remote.ProtocolVersion < ProtocolVersion {
				t.Errorf("btcd announced protocol %d, want >= %d", c.Remote.ProtocolVersion, ProtocolVersion)
			}
			if !strings.Contains(c.Remote.UserAgent, "btcd:0.26.2") {
				t.Errorf("btcd user agent %q, want btcd:0.26.2", c.Remote.UserAgent)
			}
			if err := c.Close(); err != nil {
				t.Error(err)
			}
			if _, err := os.Stat(n.LogFile()); err != nil {
				t.Errorf("log file: %v", err)
			}
			if log := n.Log(); !strings.Contains(log, "Server listening on "+n.Addr.String()) {
				t.Errorf("btcd.log does not say it listens on %v:\n%s", n.Addr, log)
			}
		})
	}
}

// TestManyHandshakes shows that Dial and Close release btcd's per-/24 slot for
// unfinished handshakes (8): many more connections than that, one after the
// other, all complete.
func TestManyHandshakes(t *testing.T) {
	n := Start(t, Options{})
	for i := range 20 {
		c, err := Dial(testContext(t), n.Addr, Regtest)
		if err != nil {
			t.Fatalf("handshake %d: %v", i, err)
		}
		if err := c.Close(); err != nil {
			t.Fatalf("close %d: %v", i, err)
		}
	}
}

func TestSeedAndGetAddr(t *testing.T) {
	tests := []struct {
		name string
		n    int
		// allStored: n is small enough that every address is stored
		// (see the package documentation).
		allStored bool
	}{
		{name: "one address rounds down to none", n: 1, allStored: true},
		{name: "300", n: 300, allStored: true},
		{name: "400", n: 400, allStored: true},
		{name: "two messages", n: 1500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := Start(t, Options{ExtraArgs: []string{"--debuglevel=AMGR=trace"}})
			ctx := testContext(t)
			seeded := RoutableAddrs(tt.n, 1)
			if err := SeedAddrs(ctx, n.Addr, Regtest, seeded); err != nil {
				t.Fatal(err)
			}
			stored, err := n.AddrCount()
			if err != nil {
				t.Fatal(err)
			}
			if stored > tt.n || (tt.allStored && stored != tt.n) {
				t.Fatalf("btcd stored %d of %d addresses (all stored: %v)", stored, tt.n, tt.allStored)
			}
			got, err := GetAddr(ctx, n.Addr, Regtest)
			if err != nil {
				t.Fatal(err)
			}
			if want := stored * 23 / 100; len(got) != want {
				t.Errorf("getaddr returned %d addresses, want floor(%d*23/100) = %d", len(got), stored, want)
			}
			inSeed := make(map[netip.AddrPort]bool, len(seeded))
			for _, a := range seeded {
				inSeed[a] = true
			}
			seen := make(map[netip.AddrPort]bool, len(got))
			for _, a := range got {
				if !inSeed[a] {
					t.Errorf("getaddr returned %v, which was not seeded", a)
				}
				if seen[a] {
					t.Errorf("getaddr returned %v twice", a)
				}
				seen[a] = true
			}
			t.Logf("seeded %d, stored %d, getaddr returned %d", tt.n, stored, len(got))
		})
	}
}

func TestAddrCountNeedsTrace(t *testing.T) {
	n := Start(t, Options{})
	if _, err := n.AddrCount(); err == nil {
		t.Error("AddrCount without --debuglevel=AMGR=trace: got no error")
	}
}

// TestSimnetIgnoresAddr shows btcd on simnet dropping addr messages and
// ignoring getaddr.
func TestSimnetIgnoresAddr(t *testing.T) {
	n := Start(t, Options{Network: Simnet, ExtraArgs: []string{"--debuglevel=AMGR=trace"}})
	ctx := testContext(t)
	if err := SeedAddrs(ctx, n.Addr, Simnet, RoutableAddrs(10, 1)); !errors.Is(err, ErrSimnetIgnoresAddr) {
		t.Fatalf("SeedAddrs on simnet = %v, want ErrSimnetIgnoresAddr", err)
	}
	// Send the addr anyway, by hand.
	c, err := Dial(ctx, n.Addr, Simnet)
	if err != nil {
		t.Fatal(err)
	}
	msg := wire.NewMsgAddr()
	for _, a := range RoutableAddrs(100, 1) {
		msg.AddAddress(wire.NewNetAddressIPPort(a.Addr().AsSlice(), a.Port(), wire.SFNodeNetwork))
	}
	if err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if stored, err := n.AddrCount(); err != nil || stored != 0 {
		t.Errorf("AddrCount = %d, %v; want 0", stored, err)
	}
	if got, err := GetAddr(ctx, n.Addr, Simnet); err != nil || len(got) != 0 {
		t.Errorf("GetAddr on simnet = %d addresses, %v; want none", len(got), err)
	}
}

func TestRestart(t *testing.T) {
	n := Start(t, Options{})
	ctx := testContext(t)
	if err := SeedAddrs(ctx, n.Addr, Regtest, RoutableAddrs(300, 3)); err != nil {
		t.Fatal(err)
	}
	addr, pid := n.Addr, n.Pid()
	begin := time.Now()
	if err := n.Restart(); err != nil {
		t.Fatal(err)
	}
	t.Logf("restart took %v", time.Since(begin))
	if n.Addr != addr {
		t.Errorf("Addr after Restart = %v, want %v", n.Addr, addr)
	}
	if n.Pid() == pid || !n.Running() {
		t.Errorf("after Restart: pid %d (was %d), running %v", n.Pid(), pid, n.Running())
	}
	if _, err := os.Stat(filepath.Join(n.DataDir, Regtest, "peers.json")); err != nil {
		t.Errorf("peers.json not saved on Stop: %v", err)
	}
	if log := n.Log(); !strings.Contains(log, "Loaded 300 addresses") {
		t.Errorf("btcd.log after Restart lacks \"Loaded 300 addresses\":\n%s", log)
	}
	got, err := GetAddr(ctx, n.Addr, Regtest)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 300*23/100 {
		t.Errorf("getaddr after Restart returned %d addresses, want %d", len(got), 300*23/100)
	}
}

func TestKill(t *testing.T) {
	n := Start(t, Options{})
	pid := n.Pid()
	n.Kill()
	if n.Running() || n.Pid() != 0 {
		t.Errorf("after Kill: Running() = %v, Pid() = %d", n.Running(), n.Pid())
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process %d still exists after Kill (kill -0: %v)", pid, err)
	}
	conn, err := net.DialTimeout("tcp", n.Addr.String(), time.Second)
	if err == nil {
		conn.Close()
		t.Errorf("port %v still accepts connections after Kill", n.Addr)
	}
	n.Kill() // no-op
	if err := n.Stop(); err != nil {
		t.Errorf("Stop after Kill = %v, want nil", err)
	}
	if err := n.Restart(); err != nil {
		t.Fatalf("Restart after Kill: %v", err)
	}
	if !n.Running() {
		t.Error("not running after Restart")
	}
}

func TestStop(t *testing.T) {
	n := Start(t, Options{})
	pid := n.Pid()
	begin := time.Now()
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("stop took %v", time.Since(begin))
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process %d still exists after Stop (kill -0: %v)", pid, err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(n.DataDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("DataDir after Close: %v, want it removed", err)
	}
}

func TestStartNodeErrors(t *testing.T) {
	bin := Binary(t)
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{name: "unknown network", opts: Options{Network: "mainnet", Binary: bin}, wantErr: "unknown network"},
		{name: "denied flag", opts: Options{Binary: bin, ExtraArgs: []string{"--addpeer=1.2.3.4"}}, wantErr: "may not set"},
		{name: "no such binary", opts: Options{Binary: "/nonexistent/btcd"}, wantErr: "no such file"},
		{name: "bad flag shows btcd's output", opts: Options{Binary: bin, ExtraArgs: []string{"--nosuchflag"}}, wantErr: "nosuchflag"},
		{name: "short ready timeout", opts: Options{Binary: bin, ReadyTimeout: time.Nanosecond}, wantErr: "not ready"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := StartNode(testContext(t), tt.opts)
			if err == nil {
				n.Close()
				t.Fatalf("StartNode succeeded, want error containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
}

// TestStartBusyPort shows that StartNode fails fast, with btcd's reason, when
// something else holds the requested port (and accepts connections on it).
func TestStartBusyPort(t *testing.T) {
	bin := Binary(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	begin := time.Now()
	n, err := StartNode(testContext(t), Options{Binary: bin, Port: port})
	if err == nil {
		n.Close()
		t.Fatalf("StartNode on busy port %d succeeded", port)
	}
	if !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("error %q does not say the address is in use", err)
	}
	if took := time.Since(begin); took > 3*time.Second {
		t.Errorf("StartNode took %v to notice that btcd exited", took)
	}
}

func TestDialRefusesNonLoopback(t *testing.T) {
	_, err := Dial(testContext(t), netip.MustParseAddrPort("192.0.2.1:18444"), Regtest)
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("Dial(192.0.2.1) = %v, want a refusal", err)
	}
}
