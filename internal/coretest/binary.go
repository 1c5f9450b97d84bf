package coretest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

const (
	// EnvBinary names the environment variable holding the path of the
	// bitcoind to use; without it FindBinary looks for bitcoind on PATH.
	EnvBinary = "BTCPIPE_BITCOIND"

	// EnvCLI names the environment variable holding the path of bitcoin-cli;
	// without it FindBinary takes the bitcoin-cli beside bitcoind, else the
	// one on PATH.
	EnvCLI = "BTCPIPE_BITCOIN_CLI"
)

// Binaries are the two Core executables a Node needs.
type Binaries struct {
	Bitcoind, CLI string
}

var (
	findOnce sync.Once
	found    Binaries
	findErr  error
)

// FindBinary locates bitcoind and bitcoin-cli (see the package
// documentation). The answer is computed once per process; the paths are
// absolute.
func FindBinary() (Binaries, error) {
	findOnce.Do(func() { found, findErr = findBinaries(os.Getenv(EnvBinary), os.Getenv(EnvCLI)) })
	return found, findErr
}

func findBinaries(envd, envcli string) (Binaries, error) {
	var b Binaries
	var err error
	if envd != "" {
		if _, err := os.Stat(envd); err != nil {
			return b, fmt.Errorf("coretest: $%s=%s: %w", EnvBinary, envd, err)
		}
		b.Bitcoind = envd
	} else if b.Bitcoind, err = exec.LookPath("bitcoind"); err != nil {
		return b, fmt.Errorf("coretest: no $%s and no bitcoind on PATH", EnvBinary)
	}
	if b.Bitcoind, err = filepath.Abs(b.Bitcoind); err != nil {
		return b, fmt.Errorf("coretest: %w", err)
	}
	switch beside := filepath.Join(filepath.Dir(b.Bitcoind), "bitcoin-cli"); {
	case envcli != "":
		b.CLI = envcli
	case fileExists(beside):
		b.CLI = beside
	default:
		if b.CLI, err = exec.LookPath("bitcoin-cli"); err != nil {
			return b, errors.New("coretest: bitcoind found at " + b.Bitcoind + " but no bitcoin-cli beside it, in $" + EnvCLI + " or on PATH")
		}
	}
	if b.CLI, err = filepath.Abs(b.CLI); err != nil {
		return b, fmt.Errorf("coretest: %w", err)
	}
	return b, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// Binary is FindBinary for tests. When there is no bitcoind it fails the test
// if the environment variable CI is "true", and otherwise skips it with one
// line saying how to get one.
func Binary(tb testing.TB) Binaries {
	tb.Helper()
	b, err := FindBinary()
	return requireBinary(tb, b, err, os.Getenv("CI") == "true")
}

func requireBinary(tb testing.TB, b Binaries, err error, ci bool) Binaries {
	tb.Helper()
	if err == nil {
		return b
	}
	if ci {
		tb.Fatalf("bitcoind is required under CI=true: %v", err)
		return b
	}
	tb.Skipf("Bitcoin Core not available (%v); set $%s to a bitcoind (e.g. ../shared/bitcoin-core/bitcoind)", err, EnvBinary)
	return b
}
