package netreach

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"time"
)

// SOCKS5 protocol constants (RFC 1928, RFC 1929).
const (
	socksVersion     = 0x05
	authNone         = 0x00
	authUserPass     = 0x02
	authNoAcceptable = 0xFF
	userPassVersion  = 0x01
	cmdConnect       = 0x01

	// ATYPIPv4, ATYPDomain and ATYPIPv6 are the SOCKS5 address types.
	ATYPIPv4   = 0x01
	ATYPDomain = 0x03
	ATYPIPv6   = 0x04

	// MaxSOCKSDomain is the longest domain name a SOCKS5 request carries
	// (its length is one byte).
	MaxSOCKSDomain = 255
)

// SOCKS5 reply codes (RFC 1928 §6), and Tor's extended codes for onion
// services (Tor proposal 304, sent when the SocksPort has ExtendedErrors;
// 0xF6 and 0xF7 are in Tor's socks5_status.h).
var (
	ErrSOCKSGeneralFailure      = errors.New("socks: general failure")
	ErrSOCKSNotAllowed          = errors.New("socks: connection not allowed by ruleset")
	ErrSOCKSNetworkUnreachable  = errors.New("socks: network unreachable")
	ErrSOCKSHostUnreachable     = errors.New("socks: host unreachable")
	ErrSOCKSConnectionRefused   = errors.New("socks: connection refused")
	ErrSOCKSTTLExpired          = errors.New("socks: TTL expired")
	ErrSOCKSCommandNotSupported = errors.New("socks: command not supported")
	ErrSOCKSAddressNotSupported = errors.New("socks: address type not supported")
	ErrSOCKSOnionNotFound       = errors.New("socks: onion service descriptor not found")
	ErrSOCKSOnionInvalid        = errors.New("socks: onion service descriptor invalid")
	ErrSOCKSOnionIntroFailed    = errors.New("socks: onion service introduction failed")
	ErrSOCKSOnionRendFailed     = errors.New("socks: onion service rendezvous failed")
	ErrSOCKSOnionMissingAuth    = errors.New("socks: onion service missing client authorization")
	ErrSOCKSOnionBadAuth        = errors.New("socks: onion service wrong client authorization")
	ErrSOCKSOnionBadAddress     = errors.New("socks: onion service invalid address")
	ErrSOCKSOnionIntroTimeout   = errors.New("socks: onion service introduction timed out")
	// ErrSOCKSUnknownReply is a reply code no table here names.
	ErrSOCKSUnknownReply = errors.New("socks: unknown reply code")

	// ErrSOCKSNoAcceptableMethod: the proxy accepts none of the
	// authentication methods offered.
	ErrSOCKSNoAcceptableMethod = errors.New("socks: no acceptable authentication method")
	// ErrSOCKSAuthFailed: the proxy refused the username and password.
	ErrSOCKSAuthFailed = errors.New("socks: authentication failed")
	// ErrSOCKSProtocol: the proxy's answer is not SOCKS5.
	ErrSOCKSProtocol = errors.New("socks: protocol error")
	// ErrSOCKSProxyUnreachable: the proxy itself cannot be reached.
	ErrSOCKSProxyUnreachable = errors.New("socks: cannot reach the proxy")
)

// socksReplies is the one table of reply codes: code → sentinel.
var socksReplies = map[byte]error{
	0x01: ErrSOCKSGeneralFailure,
	0x02: ErrSOCKSNotAllowed,
	0x03: ErrSOCKSNetworkUnreachable,
	0x04: ErrSOCKSHostUnreachable,
	0x05: ErrSOCKSConnectionRefused,
	0x06: ErrSOCKSTTLExpired,
	0x07: ErrSOCKSCommandNotSupported,
	0x08: ErrSOCKSAddressNotSupported,
	0xF0: ErrSOCKSOnionNotFound,
	0xF1: ErrSOCKSOnionInvalid,
	0xF2: ErrSOCKSOnionIntroFailed,
	0xF3: ErrSOCKSOnionRendFailed,
	0xF4: ErrSOCKSOnionMissingAuth,
	0xF5: ErrSOCKSOnionBadAuth,
	0xF6: ErrSOCKSOnionBadAddress,
	0xF7: ErrSOCKSOnionIntroTimeout,
}

// SOCKSReplyCodes lists every reply code SOCKSReplyErr names, in order.
var SOCKSReplyCodes = []byte{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
	0xF0, 0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7}

// SOCKSReplyErr returns the sentinel of a SOCKS5 reply code: nil for 0
// (succeeded), ErrSOCKSUnknownReply for a code no table names.
func SOCKSReplyErr(code byte) error {
	if code == 0 {
		return nil
	}
	if err, ok := socksReplies[code]; ok {
		return err
	}
	return ErrSOCKSUnknownReply
}

// SOCKSError is a failed SOCKS5 connection: the proxy, the target as sent
// (a domain name or an IP address with its port), the reply code when the
// proxy answered one, and the sentinel (errors.Is works on it). Its
// message starts with the sentinel's, "socks: host unreachable", so that a
// crawl record can name the failure.
type SOCKSError struct {
	Proxy  string
	Target string
	Code   byte // the reply code; 0 when the failure came before a reply
	Err    error
}

// Error returns the sentinel's text, the code, the target and the proxy.
func (e *SOCKSError) Error() string {
	s := e.Err.Error()
	if e.Code != 0 {
		s += " (0x" + strconv.FormatUint(uint64(e.Code), 16) + ")"
	}
	return s + " connecting to " + e.Target + " via " + e.Proxy
}

// Unwrap returns the sentinel.
func (e *SOCKSError) Unwrap() error { return e.Err }

// Credentials are a SOCKS5 username and password (RFC 1929), each at most
// 255 bytes.
type Credentials struct {
	User, Pass string
}

// RandomCredentials returns fresh random credentials. Tor puts streams
// with different credentials on different circuits (IsolateSOCKSAuth, on by
// default), so a connection dialled with its own credentials shares no
// circuit with any other, as Bitcoin Core's -proxyrandomize does.
func RandomCredentials() Credentials {
	return Credentials{User: rand.Text(), Pass: rand.Text()}
}

// ProxyDialFunc opens the TCP connection to a proxy or a SAM bridge, as
// net.Dialer.DialContext does.
type ProxyDialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// SOCKS5 is a SOCKS5 client (RFC 1928) with username/password
// authentication (RFC 1929). Its zero value is not usable: set Addr.
type SOCKS5 struct {
	// Addr is the proxy's host:port.
	Addr string
	// Dial opens the connection to the proxy; nil: a net.Dialer.
	Dial ProxyDialFunc
	// Credentials returns the credentials of each connection; nil: fresh
	// RandomCredentials per connection. A func returning the zero
	// Credentials offers no authentication.
	Credentials func() Credentials
}

// DialDomain connects through the proxy to host:port, host sent as a
// domain name (ATYP 3) for the proxy to resolve: nothing is resolved
// locally. Tor resolves .onion names itself. host must be 1 to 255 bytes.
func (s *SOCKS5) DialDomain(ctx context.Context, host string, port uint16) (net.Conn, error) {
	if len(host) == 0 || len(host) > MaxSOCKSDomain {
		return nil, &SOCKSError{Proxy: s.Addr, Target: host, Err: fmt.Errorf("%w: domain name of %d bytes", ErrSOCKSAddressNotSupported, len(host))}
	}
	dst := make([]byte, 0, 2+len(host)+2)
	dst = append(dst, ATYPDomain, byte(len(host)))
	dst = append(dst, host...)
	dst = binary.BigEndian.AppendUint16(dst, port)
	return s.connect(ctx, net.JoinHostPort(host, strconv.Itoa(int(port))), dst)
}

// DialAddr connects through the proxy to an IP address and port (ATYP 1
// or 4; IPv4-mapped addresses are sent as IPv4).
func (s *SOCKS5) DialAddr(ctx context.Context, ap netip.AddrPort) (net.Conn, error) {
	ip := ap.Addr().Unmap()
	var dst []byte
	if ip.Is4() {
		b := ip.As4()
		dst = append([]byte{ATYPIPv4}, b[:]...)
	} else {
		b := ip.As16()
		dst = append([]byte{ATYPIPv6}, b[:]...)
	}
	dst = binary.BigEndian.AppendUint16(dst, ap.Port())
	return s.connect(ctx, netip.AddrPortFrom(ip, ap.Port()).String(), dst)
}

// connect dials the proxy and runs the handshake for the CONNECT of
// addr (ATYP, address, port). The handshake obeys ctx: its deadline, and its
// end, which closes the connection.
func (s *SOCKS5) connect(ctx context.Context, target string, addr []byte) (net.Conn, error) {
	dial := s.Dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	conn, err := dial(ctx, "tcp", s.Addr)
	if err != nil {
		return nil, &SOCKSError{Proxy: s.Addr, Target: target, Err: fmt.Errorf("%w: %w", ErrSOCKSProxyUnreachable, err)}
	}
	var creds Credentials
	if s.Credentials != nil {
		creds = s.Credentials()
	} else {
		creds = RandomCredentials()
	}
	if err := handshakeCtx(ctx, conn, func() error { return socksHandshake(conn, creds, addr) }); err != nil {
		conn.Close()
		var code byte
		var re replyError
		if errors.As(err, &re) {
			code, err = re.code, SOCKSReplyErr(re.code)
		}
		return nil, &SOCKSError{Proxy: s.Addr, Target: target, Code: code, Err: err}
	}
	return conn, nil
}

// replyError carries a reply code out of socksHandshake.
type replyError struct{ code byte }

func (e replyError) Error() string { return "reply " + strconv.Itoa(int(e.code)) }

// handshakeCtx runs op on conn with ctx's deadline, interrupting it when
// ctx ends, and clears the deadline after.
func handshakeCtx(ctx context.Context, conn net.Conn, op func() error) error {
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	err := op()
	if !stop() { // ctx ended: the error, whatever it says, is ctx's
		return ctx.Err()
	}
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if dl, ok := ctx.Deadline(); ok && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(dl) {
			return context.DeadlineExceeded // the conn's deadline (ctx's) came first
		}
		return err
	}
	conn.SetDeadline(time.Time{})
	return nil
}

func socksHandshake(conn net.Conn, creds Credentials, addr []byte) error {
	withAuth := creds != (Credentials{})
	if withAuth && (len(creds.User) == 0 || len(creds.User) > 255 || len(creds.Pass) > 255) {
		return errors.New("socks: username must be 1 to 255 bytes, password at most 255")
	}
	// Greeting: offer user/pass (when we have credentials) and no auth.
	greet := []byte{socksVersion, 1, authNone}
	if withAuth {
		greet = []byte{socksVersion, 2, authUserPass, authNone}
	}
	// One write for greeting and nothing else: a proxy may answer each
	// step before it reads the next.
	if _, err := conn.Write(greet); err != nil {
		return err
	}
	var b [2]byte
	if _, err := io.ReadFull(conn, b[:]); err != nil {
		return fmt.Errorf("%w: reading method: %w", ErrSOCKSProtocol, err)
	}
	if b[0] != socksVersion {
		return fmt.Errorf("%w: version %d in the method reply", ErrSOCKSProtocol, b[0])
	}
	switch {
	case b[1] == authNoAcceptable:
		return ErrSOCKSNoAcceptableMethod
	case b[1] == authUserPass && withAuth:
		req := make([]byte, 0, 3+len(creds.User)+len(creds.Pass))
		req = append(req, userPassVersion, byte(len(creds.User)))
		req = append(req, creds.User...)
		req = append(req, byte(len(creds.Pass)))
		req = append(req, creds.Pass...)
		if _, err := conn.Write(req); err != nil {
			return err
		}
		if _, err := io.ReadFull(conn, b[:]); err != nil {
			return fmt.Errorf("%w: reading auth status: %w", ErrSOCKSProtocol, err)
		}
		if b[0] != userPassVersion {
			return fmt.Errorf("%w: version %d in the auth reply", ErrSOCKSProtocol, b[0])
		}
		if b[1] != 0 {
			return ErrSOCKSAuthFailed
		}
	case b[1] == authNone:
	default:
		return fmt.Errorf("%w: the proxy chose method 0x%02x, not offered", ErrSOCKSProtocol, b[1])
	}
	req := append([]byte{socksVersion, cmdConnect, 0}, addr...)
	if _, err := conn.Write(req); err != nil {
		return err
	}
	// Reply: VER REP RSV ATYP BND.ADDR BND.PORT.
	var h [4]byte
	if _, err := io.ReadFull(conn, h[:2]); err != nil {
		return fmt.Errorf("%w: reading reply: %w", ErrSOCKSProtocol, err)
	}
	if h[0] != socksVersion {
		return fmt.Errorf("%w: version %d in the reply", ErrSOCKSProtocol, h[0])
	}
	if h[1] != 0 {
		// Tor sends a full reply; some proxies close after the code,
		// which is all we need.
		return replyError{h[1]}
	}
	if _, err := io.ReadFull(conn, h[2:]); err != nil {
		return fmt.Errorf("%w: reading reply: %w", ErrSOCKSProtocol, err)
	}
	var n int
	switch h[3] {
	case ATYPIPv4:
		n = 4
	case ATYPIPv6:
		n = 16
	case ATYPDomain:
		if _, err := io.ReadFull(conn, b[:1]); err != nil {
			return fmt.Errorf("%w: reading reply: %w", ErrSOCKSProtocol, err)
		}
		n = int(b[0])
	default:
		return fmt.Errorf("%w: address type %d in the reply", ErrSOCKSProtocol, h[3])
	}
	var rest [MaxSOCKSDomain + 2]byte
	if _, err := io.ReadFull(conn, rest[:n+2]); err != nil {
		return fmt.Errorf("%w: reading reply: %w", ErrSOCKSProtocol, err)
	}
	return nil
}
