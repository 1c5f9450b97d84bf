package bip324

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// bufConn is one end of a net.Pipe whose writes are queued and delivered by
// a goroutine, like a socket's send buffer: net.Pipe alone is synchronous,
// and BIP324 lets both ends write before reading (each sends its terminator
// and version packet before reading the other's garbage), which deadlocks
// on an unbuffered pipe as soon as there is garbage. Reads and read
// deadlines are the pipe's.
type bufConn struct {
	net.Conn
	mu     sync.Mutex
	cond   *sync.Cond
	queue  [][]byte
	closed bool
	done   chan struct{}
}

func newBufConn(c net.Conn) *bufConn {
	b := &bufConn{Conn: c, done: make(chan struct{})}
	b.cond = sync.NewCond(&b.mu)
	go b.drain()
	return b
}

func (b *bufConn) drain() {
	defer close(b.done)
	for {
		b.mu.Lock()
		for len(b.queue) == 0 && !b.closed {
			b.cond.Wait()
		}
		if len(b.queue) == 0 {
			b.mu.Unlock()
			b.Conn.Close() // after a flush (Close closed it already)
			return
		}
		p := b.queue[0]
		b.queue = b.queue[1:]
		b.mu.Unlock()
		if _, err := b.Conn.Write(p); err != nil {
			b.mu.Lock()
			b.queue = nil
			b.mu.Unlock()
		}
	}
}

func (b *bufConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, io.ErrClosedPipe
	}
	b.queue = append(b.queue, append([]byte(nil), p...))
	b.cond.Signal()
	return len(p), nil
}

// CloseAfterFlush closes the connection once what is queued has been
// delivered, as a socket's close does; it does not wait.
func (b *bufConn) CloseAfterFlush() {
	b.mu.Lock()
	b.closed = true
	b.cond.Signal()
	b.mu.Unlock()
}

// Close closes at once, dropping what is queued.
func (b *bufConn) Close() error {
	b.mu.Lock()
	b.closed = true
	b.cond.Signal()
	b.mu.Unlock()
	err := b.Conn.Close() // unblocks a pending pipe write
	<-b.done
	return err
}

// bufPipe returns two connected bufConns, closed when the test ends.
func bufPipe(t testing.TB) (*bufConn, *bufConn) {
	a, b := net.Pipe()
	ca, cb := newBufConn(a), newBufConn(b)
	t.Cleanup(func() { ca.Close(); cb.Close() })
	return ca, cb
}

// packetReader reads packets after a handshake: first the session's
// leftover, then the connection.
type packetReader struct {
	r    io.Reader
	recv *Receiver
	buf  []byte
}

func newPacketReader(s *Session, r io.Reader) *packetReader {
	return &packetReader{r: io.MultiReader(bytesReader(s.Leftover), r), recv: s.Recv}
}

func bytesReader(b []byte) io.Reader { return &sliceReader{b} }

type sliceReader struct{ b []byte }

func (s *sliceReader) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.b)
	s.b = s.b[n:]
	return n, nil
}

// next returns the next packet's contents and ignore bit (valid until the
// next call).
func (p *packetReader) next() ([]byte, bool, error) {
	var hdr [LengthSize]byte
	if _, err := io.ReadFull(p.r, hdr[:]); err != nil {
		return nil, false, err
	}
	n, err := p.recv.DecryptLength(hdr[:])
	if err != nil {
		return nil, false, err
	}
	if cap(p.buf) < SealedLen(n) {
		p.buf = make([]byte, SealedLen(n))
	}
	sealed := p.buf[:SealedLen(n)]
	if _, err := io.ReadFull(p.r, sealed); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, false, err
	}
	return p.recv.Open(sealed, nil)
}
