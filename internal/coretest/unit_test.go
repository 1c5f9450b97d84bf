package coretest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckExtraArgs(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr bool
	}{
		{args: nil},
		{args: []string{"-v2transport=0"}},
		{args: []string{"-peertimeout=5", "-debug=addrman"}},
		{args: []string{"-connect=1.2.3.4"}, wantErr: true},
		{args: []string{"-noconnect"}, wantErr: true},
		{args: []string{"-addnode=1.2.3.4"}, wantErr: true},
		{args: []string{"--seednode=1.2.3.4"}, wantErr: true},
		{args: []string{"-bind=0.0.0.0"}, wantErr: true},
		{args: []string{"-rpcbind=0.0.0.0"}, wantErr: true},
		{args: []string{"-proxy=127.0.0.1:9050"}, wantErr: true},
		{args: []string{"-dnsseed=1"}, wantErr: true},
		{args: []string{"-listenonion=1"}, wantErr: true},
		{args: []string{"-datadir=/tmp/x"}, wantErr: true},
		{args: []string{"-testnet"}, wantErr: true},
		{args: []string{"-chain=main"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			if err := checkExtraArgs(tt.args); (err != nil) != tt.wantErr {
				t.Errorf("checkExtraArgs(%q) = %v, want error: %v", tt.args, err, tt.wantErr)
			}
		})
	}
}

func TestStartNodeRefusesNonLoopbackOnTheHost(t *testing.T) {
	bins := Binaries{Bitcoind: "/nonexistent/bitcoind", CLI: "/nonexistent/bitcoin-cli"}
	for _, opts := range []Options{
		{Binaries: bins, Bind: netip.MustParseAddr("11.0.0.1")},
		{Binaries: bins, MoreBinds: []netip.Addr{netip.MustParseAddr("0.0.0.0")}},
		{Binaries: bins, Netns: "x"}, // no RPCPort
	} {
		if _, err := StartNode(context.Background(), opts); err == nil {
			t.Errorf("StartNode(%+v) = nil error", opts)
		}
	}
}

func TestDialRefusesPublicFromTheHost(t *testing.T) {
	if InForeignNetns() {
		t.Skip("running inside a named network namespace")
	}
	_, err := Dial(context.Background(), netip.MustParseAddrPort("11.0.0.1:18444"), true)
	if !errors.Is(err, ErrNotLocal) {
		t.Errorf("Dial(11.0.0.1) from the host = %v, want ErrNotLocal", err)
	}
}

func TestFindBinaries(t *testing.T) {
	dir := t.TempDir()
	d, cli := filepath.Join(dir, "bitcoind"), filepath.Join(dir, "bitcoin-cli")
	for _, p := range []string{d, cli} {
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	got, err := findBinaries(d, "")
	if err != nil || got.Bitcoind != d || got.CLI != cli {
		t.Errorf("findBinaries(%s) = %+v, %v; want bitcoin-cli beside it", d, got, err)
	}
	if _, err := findBinaries(filepath.Join(dir, "missing"), ""); err == nil {
		t.Errorf("findBinaries(missing) = nil error")
	}
	t.Setenv("PATH", t.TempDir())
	if _, err := findBinaries("", ""); err == nil {
		t.Errorf("findBinaries with nothing on PATH = nil error")
	}
}

// fakeTB records what requireBinary does.
type fakeTB struct {
	testing.TB
	fatal, skip string
}

func (f *fakeTB) Helper()                        {}
func (f *fakeTB) Fatalf(format string, a ...any) { f.fatal = fmt.Sprintf(format, a...) }
func (f *fakeTB) Skipf(format string, a ...any)  { f.skip = fmt.Sprintf(format, a...) }

func TestRequireBinary(t *testing.T) {
	missing := errors.New("no bitcoind here")
	tests := []struct {
		name                string
		err                 error
		ci                  bool
		wantFatal, wantSkip bool
	}{
		{name: "found"},
		{name: "found under CI", ci: true},
		{name: "missing skips", err: missing, wantSkip: true},
		{name: "missing under CI fails", err: missing, ci: true, wantFatal: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeTB{TB: t}
			requireBinary(f, Binaries{Bitcoind: "/x/bitcoind"}, tt.err, tt.ci)
			if (f.fatal != "") != tt.wantFatal || (f.skip != "") != tt.wantSkip {
				t.Errorf("fatal %q skip %q, want fatal %v skip %v", f.fatal, f.skip, tt.wantFatal, tt.wantSkip)
			}
			if f.skip != "" && strings.Contains(f.skip, "\n") {
				t.Errorf("skip message is more than one line: %q", f.skip)
			}
		})
	}
}

func TestComplaints(t *testing.T) {
	dir := t.TempDir()
	n := &Node{DataDir: dir}
	os.MkdirAll(filepath.Join(dir, "regtest"), 0o700)
	log := `2026-01-01T00:00:00Z Bound to 127.0.0.1:1
2026-01-01T00:00:01Z [net] connection from 127.0.0.1:5 accepted
2026-01-01T00:00:01Z [net] received: version (101 bytes) peer=0
2026-01-01T00:00:01Z [net] socket closed, disconnecting peer=0
2026-01-01T00:00:02Z [net] Misbehaving: peer=1: header with invalid proof of work
2026-01-01T00:00:02Z [net] Header error: Wrong checksum (addr, 30 bytes), expected 1 was 2, peer=2
2026-01-01T00:00:03Z [net] ping timeout: 1201.0s, disconnecting peer=3
`
	if err := os.WriteFile(n.LogFile(), []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	got := n.Complaints()
	if len(got) != 3 || !strings.Contains(got[0], "Misbehaving") || !strings.Contains(got[2], "ping timeout") {
		t.Errorf("Complaints() = %q, want the misbehaving, checksum and ping timeout lines", got)
	}
}
