package netreach

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// MaxSAMLine bounds one line from a SAM bridge, as Bitcoin Core's
// MAX_MSG_SIZE does (a destination is about 520 bytes of Base64).
const MaxSAMLine = 65536

// I2PBase64 is the Base64 alphabet of I2P (- and ~ for + and /), with
// padding.
var I2PBase64 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-~")

// minDestLen is the shortest I2P destination: 387 bytes plus a certificate
// (common structures spec).
const minDestLen = 387

// SAM RESULT= codes (SAM v3 spec), as sentinels.
var (
	ErrSAMCantReachPeer  = errors.New("i2p: can't reach peer")
	ErrSAMTimeout        = errors.New("i2p: timeout")
	ErrSAMInvalidID      = errors.New("i2p: invalid session id")
	ErrSAMInvalidKey     = errors.New("i2p: invalid key")
	ErrSAMKeyNotFound    = errors.New("i2p: name not found")
	ErrSAMI2PError       = errors.New("i2p: router error")
	ErrSAMDuplicatedID   = errors.New("i2p: duplicated session id")
	ErrSAMDuplicatedDest = errors.New("i2p: duplicated destination")
	ErrSAMNoVersion      = errors.New("i2p: bridge does not speak SAM 3.1")
	ErrSAMUnknownResult  = errors.New("i2p: unknown result")

	// ErrSAMProtocol: the bridge's answer is not SAM.
	ErrSAMProtocol = errors.New("i2p: SAM protocol error")
	// ErrSAMBridge: the bridge cannot be reached, or closed the connection.
	ErrSAMBridge = errors.New("i2p: SAM bridge unreachable")
	// ErrSAMDestMismatch: NAMING LOOKUP answered a destination whose hash
	// is not the .b32.i2p name asked for.
	ErrSAMDestMismatch = errors.New("i2p: destination does not match its name")
	// ErrSAMClosed: the client was closed.
	ErrSAMClosed = errors.New("i2p: SAM client closed")
)

// samResults is the one table of RESULT= codes.
var samResults = map[string]error{
	"CANT_REACH_PEER": ErrSAMCantReachPeer,
	"TIMEOUT":         ErrSAMTimeout,
	"INVALID_ID":      ErrSAMInvalidID,
	"INVALID_KEY":     ErrSAMInvalidKey,
	"KEY_NOT_FOUND":   ErrSAMKeyNotFound,
	"I2P_ERROR":       ErrSAMI2PError,
	"DUPLICATED_ID":   ErrSAMDuplicatedID,
	"DUPLICATED_DEST": ErrSAMDuplicatedDest,
	"NOVERSION":       ErrSAMNoVersion,
}

// SAMResults lists every RESULT= code SAMResultErr names.
var SAMResults = []string{"CANT_REACH_PEER", "TIMEOUT", "INVALID_ID", "INVALID_KEY", "KEY_NOT_FOUND",
	"I2P_ERROR", "DUPLICATED_ID", "DUPLICATED_DEST", "NOVERSION"}

// SAMResultErr returns the sentinel of a RESULT= code: nil for OK.
func SAMResultErr(result string) error {
	if result == "OK" {
		return nil
	}
	if err, ok := samResults[result]; ok {
		return err
	}
	return ErrSAMUnknownResult
}

// SAMError is a failed SAM exchange: the bridge, the command ("HELLO",
// "SESSION CREATE", "NAMING LOOKUP", "STREAM CONNECT"), the target name,
// the RESULT= code and MESSAGE= text when the bridge sent them, and the
// sentinel. Its message starts with the sentinel's ("i2p: can't reach
// peer").
type SAMError struct {
	Bridge  string
	Op      string
	Target  string
	Result  string
	Message string
	Err     error
}

// Error returns the sentinel's text, the command, the target, the RESULT
// and MESSAGE, and the bridge.
func (e *SAMError) Error() string {
	s := e.Err.Error() + " (" + e.Op
	if e.Target != "" {
		s += " " + e.Target
	}
	if e.Result != "" {
		s += ": RESULT=" + e.Result
	}
	if e.Message != "" {
		s += " " + e.Message
	}
	return s + " via " + e.Bridge + ")"
}

// Unwrap returns the sentinel.
func (e *SAMError) Unwrap() error { return e.Err }

// SessionTimeout bounds the creation of a SAM session, which builds I2P
// tunnels and can take a minute or more on a real router (Bitcoin Core
// allows 3 minutes per reply). It runs apart from any one Dial's ctx: a
// Dial whose ctx ends first returns, and the session is still made for the
// next.
const SessionTimeout = 3 * time.Minute

// SAM is an I2P SAM v3.1 client, as Bitcoin Core's i2p.cpp is: one
// transient STREAM session per SAM (created on first use, SIGNATURE_TYPE=7,
// one inbound and one outbound tunnel), kept open on its own control
// connection; per stream a new connection with HELLO, NAMING LOOKUP and
// STREAM CONNECT. The session is created again when the bridge closes its
// control connection or answers INVALID_ID. SAM 3.1 has no ports: streams
// go to port 0 only (BIP155).
//
// A SAM is safe for concurrent use. Close ends the session.
type SAM struct {
	addr string
	dial ProxyDialFunc

	ctx    context.Context // ends on Close; bounds session creation
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	sess     *samSession   // the current session; nil when none
	creating chan struct{} // closed when the creation under way ends; nil when none
	lastErr  error         // why the last creation failed
	all      map[*samSession]struct{}
	done     bool
}

type samSession struct {
	id   string
	ctrl net.Conn
	dead chan struct{} // closed when the control connection ends
}

// NewSAM returns a client of the SAM bridge at addr (host:port); dial
// opens connections to it (nil: a net.Dialer).
func NewSAM(addr string, dial ProxyDialFunc) *SAM {
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &SAM{addr: addr, dial: dial, ctx: ctx, cancel: cancel, all: map[*samSession]struct{}{}}
}

// Addr returns the bridge's address.
func (s *SAM) Addr() string { return s.addr }

// SessionID returns the current session's id, "" when there is none.
func (s *SAM) SessionID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sess == nil || s.sess.isDead() {
		return ""
	}
	return s.sess.id
}

func (ss *samSession) isDead() bool {
	select {
	case <-ss.dead:
		return true
	default:
		return false
	}
}

// Close ends the session (and a creation under way) and waits for their
// goroutines. Dial fails after.
func (s *SAM) Close() error {
	s.mu.Lock()
	s.done = true
	for ss := range s.all {
		ss.ctrl.Close()
	}
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// session returns the live session, starting its creation if there is
// none, and waiting for it until ctx ends.
func (s *SAM) session(ctx context.Context) (*samSession, error) {
	s.mu.Lock()
	if s.done {
		s.mu.Unlock()
		return nil, ErrSAMClosed
	}
	if s.sess != nil && !s.sess.isDead() {
		ss := s.sess
		s.mu.Unlock()
		return ss, nil
	}
	if s.creating == nil {
		s.sess = nil
		s.creating = make(chan struct{})
		s.wg.Add(1)
		go s.create(s.creating)
	}
	ch := s.creating
	s.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sess != nil && !s.sess.isDead() {
		return s.sess, nil
	}
	if s.lastErr != nil {
		return nil, s.lastErr
	}
	return nil, &SAMError{Bridge: s.addr, Op: "SESSION CREATE", Err: fmt.Errorf("%w: the session ended at once", ErrSAMBridge)}
}

// create makes a session, within SessionTimeout or until Close, and
// closes done.
func (s *SAM) create(done chan struct{}) {
	defer s.wg.Done()
	ctx, cancel := context.WithTimeout(s.ctx, SessionTimeout)
	ss, br, err := s.createSession(ctx)
	cancel()
	s.mu.Lock()
	s.creating, s.lastErr = nil, err
	if err == nil {
		if s.done {
			ss.ctrl.Close()
			s.lastErr = ErrSAMClosed
		} else {
			s.sess = ss
			s.all[ss] = struct{}{}
			s.wg.Add(1)
			go s.watch(ss, br)
		}
	}
	s.mu.Unlock()
	close(done)
}

// watch waits for the end of a session's control connection. The bridge
// sends nothing on it in SAM 3.1, so a read returns only when it ends (a
// bridge that sends more than MaxSAMLine bytes there ends it too).
func (s *SAM) watch(ss *samSession, br *bufio.Reader) {
	defer s.wg.Done()
	io.Copy(io.Discard, io.LimitReader(br, MaxSAMLine))
	ss.ctrl.Close()
	close(ss.dead)
	s.mu.Lock()
	delete(s.all, ss)
	s.mu.Unlock()
}

func (s *SAM) createSession(ctx context.Context) (*samSession, *bufio.Reader, error) {
	var idb [5]byte
	rand.Read(idb[:])
	id := hex.EncodeToString(idb[:]) // 10 characters, as Core's
	c, br, err := s.hello(ctx)
	if err != nil {
		return nil, nil, err
	}
	var reply samReply
	err = handshakeCtx(ctx, c, func() error {
		reply, err = s.request(c, br, "SESSION CREATE", "SESSION STATUS", "",
			"SESSION CREATE STYLE=STREAM ID="+id+" DESTINATION=TRANSIENT SIGNATURE_TYPE=7 inbound.quantity=1 outbound.quantity=1")
		return err
	})
	if err == nil {
		if _, derr := decodeDest(reply.get("DESTINATION")); derr != nil {
			err = &SAMError{Bridge: s.addr, Op: "SESSION CREATE", Err: fmt.Errorf("%w: DESTINATION=: %w", ErrSAMProtocol, derr)}
		}
	}
	if err != nil {
		c.Close()
		if ctx.Err() != nil && s.ctx.Err() == nil {
			err = &SAMError{Bridge: s.addr, Op: "SESSION CREATE", Err: fmt.Errorf("%w: no session within %v", ErrSAMTimeout, SessionTimeout)}
		}
		return nil, nil, err
	}
	return &samSession{id: id, ctrl: c, dead: make(chan struct{})}, br, nil
}

// drop forgets ss if it is still the current session, and closes it.
func (s *SAM) drop(ss *samSession) {
	s.mu.Lock()
	if s.sess == ss {
		s.sess = nil
	}
	s.mu.Unlock()
	ss.ctrl.Close()
}

// hello opens a connection to the bridge and agrees on version 3.1.
func (s *SAM) hello(ctx context.Context) (net.Conn, *bufio.Reader, error) {
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	if done {
		return nil, nil, ErrSAMClosed
	}
	c, err := s.dial(ctx, "tcp", s.addr)
	if err != nil {
		return nil, nil, &SAMError{Bridge: s.addr, Op: "HELLO", Err: fmt.Errorf("%w: %w", ErrSAMBridge, err)}
	}
	br := bufio.NewReaderSize(c, 1024)
	err = handshakeCtx(ctx, c, func() error {
		_, err := s.request(c, br, "HELLO", "HELLO REPLY", "", "HELLO VERSION MIN=3.1 MAX=3.1")
		return err
	})
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, br, nil
}

// Dial opens a stream to the I2P destination named name ("….b32.i2p").
// The name goes to the bridge (NAMING LOOKUP) and is never resolved
// locally. A session the bridge no longer knows (INVALID_ID) is created
// again and the connect tried once more.
func (s *SAM) Dial(ctx context.Context, name string) (net.Conn, error) {
	key, err := ParseI2PHost(name)
	if err != nil {
		return nil, &SAMError{Bridge: s.addr, Op: "STREAM CONNECT", Target: name, Err: fmt.Errorf("%w: %w", ErrSAMInvalidKey, err)}
	}
	for attempt := 0; ; attempt++ {
		ss, err := s.session(ctx)
		if err != nil {
			return nil, err
		}
		conn, err := s.connect(ctx, ss, name, key)
		if err == nil {
			return conn, nil
		}
		if errors.Is(err, ErrSAMInvalidID) || ss.isDead() {
			s.drop(ss)
			if attempt == 0 && ctx.Err() == nil {
				continue
			}
		}
		return nil, err
	}
}

func (s *SAM) connect(ctx context.Context, ss *samSession, name string, key [32]byte) (net.Conn, error) {
	c, br, err := s.hello(ctx)
	if err != nil {
		return nil, err
	}
	err = handshakeCtx(ctx, c, func() error {
		r, err := s.request(c, br, "NAMING LOOKUP", "NAMING REPLY", name, "NAMING LOOKUP NAME="+name)
		if err != nil {
			return err
		}
		dest := r.get("VALUE")
		raw, err := decodeDest(dest)
		if err != nil {
			return &SAMError{Bridge: s.addr, Op: "NAMING LOOKUP", Target: name, Err: fmt.Errorf("%w: VALUE=: %w", ErrSAMProtocol, err)}
		}
		if sha256.Sum256(raw) != key {
			return &SAMError{Bridge: s.addr, Op: "NAMING LOOKUP", Target: name, Err: ErrSAMDestMismatch}
		}
		_, err = s.request(c, br, "STREAM CONNECT", "STREAM STATUS", name,
			"STREAM CONNECT ID="+ss.id+" DESTINATION="+dest+" SILENT=false")
		return err
	})
	if err != nil {
		c.Close()
		return nil, err
	}
	return &bufConn{Conn: c, r: br}, nil
}

// bufConn reads what the bridge sent after its reply from the buffer
// first.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// samReply is one parsed reply line: its first two words, and KEY=VALUE
// pairs (values may be "quoted").
type samReply struct {
	verb string
	keys map[string]string
}

func (r samReply) get(k string) string { return r.keys[k] }

// request sends line and reads the reply, which must start with verb and
// carry RESULT=OK; a bad result is a *SAMError with its sentinel.
func (s *SAM) request(c net.Conn, br *bufio.Reader, op, verb, target, line string) (samReply, error) {
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return samReply{}, &SAMError{Bridge: s.addr, Op: op, Target: target, Err: fmt.Errorf("%w: %w", ErrSAMBridge, err)}
	}
	raw, err := readLine(br)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("%w: connection closed", ErrSAMBridge)
		} else if !errors.Is(err, ErrSAMProtocol) {
			err = fmt.Errorf("%w: %w", ErrSAMBridge, err)
		}
		return samReply{}, &SAMError{Bridge: s.addr, Op: op, Target: target, Err: err}
	}
	r, err := parseSAMReply(raw)
	if err != nil || r.verb != verb {
		return samReply{}, &SAMError{Bridge: s.addr, Op: op, Target: target,
			Err: fmt.Errorf("%w: want %q, got %.80q", ErrSAMProtocol, verb, raw)}
	}
	result, ok := r.keys["RESULT"]
	if !ok {
		return samReply{}, &SAMError{Bridge: s.addr, Op: op, Target: target,
			Err: fmt.Errorf("%w: no RESULT= in %.80q", ErrSAMProtocol, raw)}
	}
	if err := SAMResultErr(result); err != nil {
		msg := r.keys["MESSAGE"]
		if len(msg) > 200 {
			msg = msg[:200]
		}
		return samReply{}, &SAMError{Bridge: s.addr, Op: op, Target: target, Result: result, Message: msg, Err: err}
	}
	return r, nil
}

// readLine reads one line of at most MaxSAMLine bytes, without its "\n".
func readLine(br *bufio.Reader) (string, error) {
	var buf []byte
	for {
		frag, err := br.ReadSlice('\n')
		if len(buf)+len(frag) > MaxSAMLine {
			return "", fmt.Errorf("%w: a line longer than %d bytes", ErrSAMProtocol, MaxSAMLine)
		}
		buf = append(buf, frag...)
		switch {
		case err == nil:
			return string(bytes.TrimRight(buf, "\r\n")), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(buf) > 0:
			return "", io.ErrUnexpectedEOF
		default:
			return "", err
		}
	}
}

// parseSAMReply splits a reply line into its first two words and its
// KEY=VALUE pairs. A value may be double-quoted, with \" and \\ escapes.
func parseSAMReply(line string) (samReply, error) {
	r := samReply{keys: map[string]string{}}
	words := 0
	i := 0
	for i < len(line) {
		for i < len(line) && line[i] == ' ' {
			i++
		}
		if i == len(line) {
			break
		}
		start := i
		for i < len(line) && line[i] != ' ' && line[i] != '=' {
			i++
		}
		key := line[start:i]
		if i == len(line) || line[i] == ' ' {
			if words < 2 {
				if words == 1 {
					r.verb += " "
				}
				r.verb += key
				words++
			} else {
				r.keys[key] = ""
			}
			continue
		}
		i++ // '='
		var val strings.Builder
		if i < len(line) && line[i] == '"' {
			i++
			closed := false
			for i < len(line) {
				ch := line[i]
				if ch == '\\' && i+1 < len(line) {
					val.WriteByte(line[i+1])
					i += 2
					continue
				}
				i++
				if ch == '"' {
					closed = true
					break
				}
				val.WriteByte(ch)
			}
			if !closed {
				return r, errors.New("unterminated quote")
			}
		} else {
			start := i
			for i < len(line) && line[i] != ' ' {
				i++
			}
			val.WriteString(line[start:i])
		}
		r.keys[key] = val.String()
	}
	if words < 2 {
		return r, errors.New("short reply")
	}
	return r, nil
}

// decodeDest decodes an I2P Base64 destination and checks its length.
func decodeDest(dest string) ([]byte, error) {
	raw, err := I2PBase64.DecodeString(dest)
	if err != nil {
		return nil, err
	}
	if len(raw) < minDestLen {
		return nil, fmt.Errorf("destination of %d bytes, want at least %d", len(raw), minDestLen)
	}
	return raw, nil
}
