package crawler

import (
	"context"
	"errors"
	"net"
	"os"
	"syscall"

	"github.com/btcpipe/btcpipe/peer"
)

// classifyDial names the failure of a TCP connect.
func classifyDial(err error) Outcome {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return Refused
	case isTimeout(err):
		return Timeout
	case isReset(err):
		return Reset
	default:
		return Unreachable
	}
}

// classifySession names how a connection that was established ended, when
// it did not end on our terms (quiet period, getaddr timeout, address cap)
// nor through the crawl's interruption. handshook tells whether the
// handshake completed, addrs how many address entries the peer sent.
func classifySession(err error, handshook bool, addrs int) Outcome {
	switch {
	case handshook && addrs > 0:
		return Reachable
	case errors.Is(err, peer.ErrSelfConnection):
		return Self
	case errors.Is(err, peer.ErrVersionTooOld):
		return VersionTooOld
	case errors.Is(err, peer.ErrHandshakeTimeout):
		// Also when the handshake completed just as the deadline
		// passed (the session saw the deadline first): the peer did
		// not close anything.
		return Timeout
	case handshook:
		return ClosedAfterVerack
	case isTimeout(err):
		return Timeout
	case isReset(err):
		return Reset
	default:
		return HandshakeFailed
	}
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED)
}

// maxErrorLen bounds Record.Error, so that a line stays short.
const maxErrorLen = 256

func errorText(err error) string {
	s := err.Error()
	if len(s) > maxErrorLen {
		s = s[:maxErrorLen-3] + "..."
	}
	return s
}
