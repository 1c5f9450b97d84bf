package main

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/btcpipe/btcpipe/internal/fakepeer"
	"github.com/btcpipe/btcpipe/wire"
)

// openPTY opens a pseudo-terminal pair: the controlling side, read by the
// test, and the terminal side, given to the program as its stdout and
// stderr, so that it logs as to a person's terminal (coloured text).
func openPTY(t *testing.T) (ptmx, tty *os.File) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open /dev/ptmx: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("ptsname: %v", err)
	}
	tty, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open the terminal side: %v", err)
	}
	return ptmx, tty
}

// TestPeerCannotWriteIntoTheTerminal runs btcpipe node on a pseudo-terminal
// against a peer whose user agent holds escape sequences that set the
// window title (ESC ] 0 ; … BEL) and clear the screen (ESC [ 2 J): none of
// the peer's bytes may reach the terminal as they are; the handshake line
// shows them escaped, and the only escapes left are the log's own colours.
func TestPeerCannotWriteIntoTheTerminal(t *testing.T) {
	bin := binary(t)
	evil := "/evil:1.0/\x1b]0;you have been pwned\x07\x1b[2J\x9b31m\r\nFAKE LOG LINE"
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	handshook := make(chan struct{})
	fp := fakepeer.Listen(t, &wire.Regtest, fakepeer.Options{Handler: func(ctx context.Context, c *fakepeer.Conn) {
		if _, err := c.Handshake(ctx, fakepeer.HandshakeOpts{UserAgent: evil, SendAddrV2: true}); err != nil {
			return
		}
		close(handshook)
		<-ctx.Done()
	}})
	ptmx, tty := openPTY(t)
	defer ptmx.Close()
	cmd := exec.Command(bin, "node")
	cmd.Env = cleanEnv("BTCPIPE_NETWORK=regtest", "BTCPIPE_PEER="+fp.Addr().String(), "TERM=xterm-256color")
	cmd.Stdout, cmd.Stderr = tty, tty
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()            // the child has it
	out := &lockedBuffer{} // what reached the terminal
	read := make(chan struct{})
	go func() {
		defer close(read)
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			out.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	select {
	case <-handshook:
	case <-ctx.Done():
		cmd.Process.Kill()
		t.Fatal("no handshake")
	}
	// Let the handshake line be written, then stop the node.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && !strings.Contains(out.String(), "handshake complete") {
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	<-read // EIO once the child is gone
	got := out.String()
	if !strings.Contains(got, "handshake complete") {
		t.Fatalf("no handshake line on the terminal:\n%s", got)
	}
	for _, bad := range []string{"\x07", "\x1b]", "\x1b[2J", "\x9b", "\r\nFAKE LOG LINE"} {
		if strings.Contains(got, bad) {
			t.Errorf("the peer's %q reached the terminal:\n%q", bad, got)
		}
	}
	// Every ESC left is a colour code of the log's own: ESC [ digits m.
	for rest := got; ; {
		i := strings.IndexByte(rest, 0x1b)
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i:], 'm')
		if j < 2 || rest[i+1] != '[' || strings.Trim(rest[i+2:i+j], "0123456789;") != "" {
			t.Fatalf("an escape that is not a colour code reached the terminal: %q", rest[i:min(len(rest), i+20)])
		}
		rest = rest[i+j:]
	}
	if !strings.Contains(got, `\x1b]0;you have been pwned\x07`) {
		t.Errorf("the user agent is not shown escaped:\n%q", got)
	}
	if !strings.Contains(got, "\x1b[") {
		t.Errorf("no colour at all: the log did not take the pseudo-terminal for a terminal:\n%q", got)
	}
}
