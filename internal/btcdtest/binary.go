package btcdtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	// BtcdModule is the module FindBinary installs, at BtcdVersion.
	BtcdModule = "github.com/btcsuite/btcd"

	// BtcdVersion is the pinned btcd release that the package's findings
	// (see the package documentation) were made against.
	BtcdVersion = "v0.26.2"

	// EnvBinary names the environment variable that, when set, is the path
	// of the btcd binary to use instead of <repo root>/bin/btcd.
	EnvBinary = "BTCPIPE_BTCD"

	// module is this repository's module path, used to find its root.
	module = "github.com/btcpipe/btcpipe"

	// installTimeout bounds the go install of btcd.
	installTimeout = 10 * time.Minute
)

var (
	findOnce sync.Once
	findPath string
	findErr  error
)

// FindBinary returns the path of a btcd binary: $BTCPIPE_BTCD if set (used as
// is, whatever its version), else <repo root>/bin/btcd. When the latter is
// missing, or reports a version other than BtcdVersion, FindBinary installs
// btcd with `go install github.com/btcsuite/btcd@v0.26.2` into
// <repo root>/bin (through a temporary GOBIN and a rename, so concurrent test
// processes cannot see a half-written file). It needs the go command on PATH
// and the Go module proxy.
//
// The answer, success or failure, is computed once per process.
func FindBinary() (string, error) {
	findOnce.Do(func() { findPath, findErr = findBinary() })
	return findPath, findErr
}

func findBinary() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("btcdtest: $%s=%s: %w", EnvBinary, p, err)
		}
		return p, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(root, "bin", "btcd")
	if v, err := binaryVersion(bin); err == nil && strings.Contains(v, strings.TrimPrefix(BtcdVersion, "v")) {
		return bin, nil
	}
	if err := install(filepath.Join(root, "bin")); err != nil {
		return "", err
	}
	if _, err := binaryVersion(bin); err != nil {
		return "", fmt.Errorf("btcdtest: installed %s but cannot run it: %w", bin, err)
	}
	return bin, nil
}

// binaryVersion runs `btcd --version` and returns its output.
func binaryVersion(bin string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--version").CombinedOutput()
	return string(out), err
}

// install builds btcd at BtcdVersion into dir/btcd.
func install(dir string) error {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("btcdtest: cannot install btcd: no go command on PATH: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("btcdtest: cannot install btcd: %w", err)
	}
	gobin, err := os.MkdirTemp(dir, ".btcd-install-")
	if err != nil {
		return fmt.Errorf("btcdtest: cannot install btcd: %w", err)
	}
	defer os.RemoveAll(gobin)

	ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, goCmd, "install", BtcdModule+"@"+BtcdVersion)
	cmd.Dir = os.TempDir() // outside any module or workspace
	cmd.Env = append(os.Environ(), "GOBIN="+gobin, "GOFLAGS=", "GOWORK=off", "CGO_ENABLED=0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("btcdtest: go install %s@%s: %w\n%s", BtcdModule, BtcdVersion, err, out.String())
	}
	if err := os.Rename(filepath.Join(gobin, "btcd"), filepath.Join(dir, "btcd")); err != nil {
		return fmt.Errorf("btcdtest: cannot install btcd: %w", err)
	}
	return nil
}

// RepoRoot returns the root of the btcpipe module: the nearest directory,
// from the working directory upwards and then from this source file upwards,
// whose go.mod declares module github.com/btcpipe/btcpipe.
func RepoRoot() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	for _, dir := range starts {
		for {
			if isRepoRoot(dir) {
				return dir, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", errors.New("btcdtest: cannot find the root of module " + module +
		" above the working directory; run from inside the repository or set $" + EnvBinary)
}

func isRepoRoot(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "module" && strings.Trim(f[1], `"`) == module {
			return true
		}
	}
	return false
}

// Binary is FindBinary for tests. When no btcd can be had it fails the test
// if the environment variable CI is "true", and otherwise skips it with a hint
// to run `make btcd`; it never skips under CI=true.
func Binary(tb testing.TB) string {
	tb.Helper()
	bin, err := FindBinary()
	return requireBinary(tb, bin, err, os.Getenv("CI") == "true")
}

// requireBinary is Binary after FindBinary.
func requireBinary(tb testing.TB, bin string, err error, ci bool) string {
	tb.Helper()
	if err == nil {
		return bin
	}
	if ci {
		tb.Fatalf("btcd %s is required under CI=true but cannot be had: %v", BtcdVersion, err)
		return ""
	}
	tb.Skipf("btcd %s not available (%v); install it with `make btcd` (or set $%s)", BtcdVersion, err, EnvBinary)
	return ""
}
