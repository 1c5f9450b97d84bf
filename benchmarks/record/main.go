// Command record captures a real inbound byte stream from btcd for the
// benchmarks and for the tests of `btcpipe decode`:
//
//	go run ./benchmarks/record [-btcd bin/btcd] [-btcpipe bin/btcpipe] [-out cmd/btcpipe/testdata/btcd-regtest.rec]
//
// It starts btcd v0.26.2 on regtest with internal/btcdtest (loopback only:
// --listen=127.0.0.1:PORT --connect=127.0.0.1:1 --nodnsseed --norpc, a fresh
// temporary datadir), teaches it 400 routable addresses from a first
// connection (btcdtest.SeedAddrs; the addresses are data only and never
// dialled), and then runs `btcpipe node` against it twice, each time for
// -duration with BTCPIPE_PING_INTERVAL=500ms and BTCPIPE_RECORD=-out, so that
// both sessions append what btcd sent to the same file:
//
//  1. BTCPIPE_SEND_ADDRV2=true: btcd answers getaddr with addrv2;
//  2. BTCPIPE_SEND_ADDRV2=false: btcd answers with addr.
//
// The file is replaced, not appended to. btcd answers each getaddr with a
// random 23 % of the addresses it knows, so two recordings differ; the tests
// pin the counts of the committed one.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/btcpipe/btcpipe/internal/btcdtest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "record: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	btcd := flag.String("btcd", "bin/btcd", "btcd v0.26.2 binary (make btcd)")
	btcpipe := flag.String("btcpipe", "bin/btcpipe", "btcpipe binary (make build)")
	out := flag.String("out", "cmd/btcpipe/testdata/btcd-regtest.rec", "file to write the recorded stream to")
	addrs := flag.Int("addrs", 400, "routable addresses to teach btcd (at most 800 are all kept)")
	duration := flag.Duration("duration", 5*time.Second, "length of each of the two sessions")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	node, err := btcdtest.StartNode(ctx, btcdtest.Options{Network: btcdtest.Regtest, Binary: *btcd})
	if err != nil {
		return err
	}
	defer node.Close()
	if err := btcdtest.SeedAddrs(ctx, node.Addr, btcdtest.Regtest, btcdtest.RoutableAddrs(*addrs, 1)); err != nil {
		return err
	}
	if err := os.Remove(*out); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, addrv2 := range []string{"true", "false"} {
		fmt.Printf("record: btcpipe node against %s for %v, BTCPIPE_SEND_ADDRV2=%s\n", node.Addr, *duration, addrv2)
		if err := session(ctx, *btcpipe, node.Addr.String(), *out, addrv2, *duration); err != nil {
			return err
		}
	}
	st, err := os.Stat(*out)
	if err != nil {
		return err
	}
	fmt.Printf("record: wrote %d bytes to %s\n", st.Size(), *out)
	return nil
}

// session runs btcpipe node for d and stops it with SIGTERM.
func session(ctx context.Context, bin, peer, out, addrv2 string, d time.Duration) error {
	cmd := exec.CommandContext(ctx, bin, "node")
	cmd.Env = append(os.Environ(),
		"BTCPIPE_NETWORK=regtest",
		"BTCPIPE_PEER="+peer,
		"BTCPIPE_PING_INTERVAL=500ms",
		"BTCPIPE_SEND_ADDRV2="+addrv2,
		"BTCPIPE_RECORD="+out,
		"BTCPIPE_LOG_LEVEL=warn",
	)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return fmt.Errorf("btcpipe exited early: %v", err)
	case <-time.After(d):
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	if err := <-done; err != nil {
		return fmt.Errorf("btcpipe: %v", err)
	}
	return nil
}
