package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// Server is a running PostgreSQL server.
type Server struct {
	dir  string
	port int
	cmd  *exec.Cmd
	done chan error
	seq  atomic.Int64
}

// binDir finds the directory of initdb and postgres.
func binDir() (string, error) {
	if dir := os.Getenv("BTCPIPE_PG_BIN"); dir != "" {
		return dir, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Strings(dirs)
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "postgres")); err == nil {
			return dirs[i], nil
		}
	}
	if p, err := exec.LookPath("postgres"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("no PostgreSQL server binaries (initdb, postgres) under /usr/lib/postgresql/*/bin or on PATH: run make postgres")
}

// Missing skips t (or fails it under CI=true) with err.
func Missing(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("PostgreSQL is required under CI=true: %v", err)
	}
	t.Skipf("skipping: %v", err)
}

// asUser returns how to run a command as the postgres user when we are
// root (initdb and postgres refuse to run as root), and that user's ids.
func asUser() (prefix []string, uid, gid int, err error) {
	if os.Geteuid() != 0 {
		return nil, -1, -1, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, 0, 0, fmt.Errorf("running as root and there is no postgres user to run PostgreSQL as: %w", err)
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return []string{"runuser", "-u", "postgres", "--"}, uid, gid, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Start starts a server; Stop it when done.
func Start() (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	prefix, uid, gid, err := asUser()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "btcpipe-pgtest-")
	if err != nil {
		return nil, err
	}
	if uid >= 0 {
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	run := func(name string, args ...string) *exec.Cmd {
		argv := append(append(append([]string{}, prefix...), filepath.Join(bin, name)), args...)
		return exec.Command(argv[0], argv[1:]...)
	}
	if out, err := run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync").CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &Server{dir: dir, port: port}
	if err := s.launch(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// launch starts postgres on s's data and port and waits until it accepts
// connections.
func (s *Server) launch() error {
	bin, err := binDir()
	if err != nil {
		return err
	}
	prefix, _, _, err := asUser()
	if err != nil {
		return err
	}
	argv := append(append([]string{}, prefix...), filepath.Join(bin, "postgres"), "-D", filepath.Join(s.dir, "data"), "-k", s.dir,
		"-h", "127.0.0.1", "-p", strconv.Itoa(s.port),
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=100")
	s.cmd = exec.Command(argv[0], argv[1:]...)
	logName := filepath.Join(s.dir, "postgres.log")
	logf, err := os.OpenFile(logName, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	s.done = make(chan error, 1)
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("postgres: %w", err)
	}
	done := s.done
	go func() { done <- s.cmd.Wait(); logf.Close() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		db, err := sql.Open("pgx", s.DSN("postgres"))
		if err == nil {
			err = db.Ping()
			db.Close()
		}
		if err == nil {
			return nil
		}
		select {
		case werr := <-s.done:
			s.done <- werr
			log, _ := os.ReadFile(logName)
			return fmt.Errorf("postgres exited (%v): %s", werr, log)
		default:
		}
		if time.Now().After(deadline) {
			syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			return fmt.Errorf("postgres did not accept connections within 30s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// DSN returns the URL of database name on the server.
func (s *Server) DSN(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, name)
}

// NewDB creates an empty database and returns its URL.
func (s *Server) NewDB() (string, error) {
	name := fmt.Sprintf("t%d", s.seq.Add(1))
	db, err := sql.Open("pgx", s.DSN("postgres"))
	if err != nil {
		return "", err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return "", err
	}
	return s.DSN(name), nil
}

// Kill stops the server at once (SIGKILL: as if the database host were
// lost); Restart starts it again on the same port and data.
func (s *Server) Kill() {
	pgid := s.cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGKILL) // the group: runuser, postgres and its backends
	<-s.done
	// Wait for every process of the group to be gone (reaped by init),
	// then remove the lock file of the dead postmaster.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
			break
		}
	}
	os.Remove(filepath.Join(s.dir, "data", "postmaster.pid"))
}

// Restart starts a killed server again (same port, same data) and waits
// until it accepts connections.
func (s *Server) Restart() error { return s.launch() }

// Stop stops the server (a fast shutdown, then SIGKILL after 10 s) and
// removes its directory.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		select {
		case <-s.done:
		default:
			syscall.Kill(-s.cmd.Process.Pid, syscall.SIGINT) // fast shutdown, to the whole group
			select {
			case <-s.done:
			case <-time.After(10 * time.Second):
				syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
				<-s.done
			}
		}
	}
	os.RemoveAll(s.dir)
}

var (
	shared     *Server
	sharedErr  error
	sharedOnce sync.Once
)

// DB returns a fresh database on the package's shared server, started on
// first use; StopShared (from TestMain) stops it. It skips or fails t when
// PostgreSQL is missing.
func DB(t testing.TB) string {
	t.Helper()
	sharedOnce.Do(func() { shared, sharedErr = Start() })
	if sharedErr != nil {
		Missing(t, sharedErr)
	}
	dsn, err := shared.NewDB()
	if err != nil {
		t.Fatalf("creating a database: %v", err)
	}
	return dsn
}

// StopShared stops the shared server, if one was started.
func StopShared() {
	if shared != nil {
		shared.Stop()
	}
}
