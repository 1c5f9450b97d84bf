package netreach

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/btcpipe/btcpipe/wire"
)

// DirectDialFunc opens a TCP connection to an IP address, as
// crawler.Config.Dial and peer.NodeConfig.Dial do: the crawler's allowlist
// check and dial recording wrap it.
type DirectDialFunc func(ctx context.Context, addr netip.AddrPort) (net.Conn, error)

// Config says how each network is reached. Its zero value dials IPv4 and
// IPv6 directly and nothing else.
type Config struct {
	// TorProxy is the host:port of Tor's SOCKS port (usually
	// 127.0.0.1:9050). Empty: Proxy, if set, as Bitcoin Core's -onion
	// defaults to -proxy; else Tor v3 addresses are not dialled.
	TorProxy string
	// I2PSAM is the host:port of an I2P SAM v3.1 bridge (usually
	// 127.0.0.1:7656). Empty: I2P addresses are not dialled.
	I2PSAM string
	// CJDNSReachable says the host has a route into fc00::/8: CJDNS
	// addresses are dialled (directly, or through Proxy when it is set).
	CJDNSReachable bool
	// Proxy is the host:port of a SOCKS5 proxy for every IPv4, IPv6 and
	// CJDNS connection, as Bitcoin Core's -proxy: nothing is dialled
	// directly when it is set.
	Proxy string
	// OnlyNet, when not empty, lists the only networks dialled, as
	// Bitcoin Core's -onlynet.
	OnlyNet []wire.NetID
	// SharedCredentials turns off the random SOCKS credentials per
	// connection (Bitcoin Core's -proxyrandomize=0): no authentication
	// is offered, and Tor may put many connections on one circuit.
	SharedCredentials bool
	// Direct dials IP addresses when no proxy applies; nil: a net.Dialer.
	Direct DirectDialFunc
	// ProxyDial opens connections to the proxies and the SAM bridge
	// (never to a peer); nil: a net.Dialer.
	ProxyDial ProxyDialFunc
}

// Via is how an address is reached.
type Via int

// Ways to reach an address.
const (
	ViaDirect Via = iota + 1 // Config.Direct
	ViaTor                   // the SOCKS5 proxy for Tor (TorProxy, or Proxy)
	ViaProxy                 // the SOCKS5 proxy for clearnet (Proxy)
	ViaSAM                   // the I2P SAM bridge
)

// String returns "direct", "tor", "proxy" or "sam".
func (v Via) String() string {
	switch v {
	case ViaDirect:
		return "direct"
	case ViaTor:
		return "tor"
	case ViaProxy:
		return "proxy"
	case ViaSAM:
		return "sam"
	}
	return "none"
}

// ErrNotDialled is what every *NotDialledError is (errors.Is).
var ErrNotDialled = errors.New("not dialled")

// Classes of NotDialledError (its Unwrap).
var (
	ErrNoProxy     = errors.New("no proxy configured")
	ErrOnlyNet     = errors.New("excluded by onlynet")
	ErrUnreachable = errors.New("network not reachable")
	ErrBadPort     = errors.New("port not dialable")
	ErrUnsupported = errors.New("network not supported")
)

// NotDialledError says why an address is not dialled, in words a crawl
// record can carry: "tor: no proxy configured", "onlynet excludes ipv6".
type NotDialledError struct {
	Network wire.NetID
	Reason  string
	Err     error // one of ErrNoProxy, ErrOnlyNet, ErrUnreachable, ErrBadPort, ErrUnsupported
}

// Error returns Reason.
func (e *NotDialledError) Error() string { return e.Reason }

// Unwrap returns the class (ErrNoProxy, ErrOnlyNet, …).
func (e *NotDialledError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrNotDialled) hold.
func (e *NotDialledError) Is(target error) bool { return target == ErrNotDialled }

// Dialer reaches an address on any BIP155 network through the way its
// Config gives: directly, through a SOCKS5 proxy, or through the SAM
// bridge. It is safe for concurrent use; Close ends the I2P session.
type Dialer struct {
	cfg     Config
	direct  DirectDialFunc
	tor     *SOCKS5 // nil: no Tor
	proxy   *SOCKS5 // nil: clearnet direct
	sam     *SAM    // nil: no I2P
	onlynet map[wire.NetID]bool
}

// New checks cfg and returns a Dialer.
func New(cfg Config) (*Dialer, error) {
	for _, f := range []struct{ name, v string }{{"tor proxy", cfg.TorProxy}, {"i2p sam", cfg.I2PSAM}, {"proxy", cfg.Proxy}} {
		if f.v == "" {
			continue
		}
		if _, port, err := net.SplitHostPort(f.v); err != nil || port == "" || port == "0" {
			return nil, fmt.Errorf("netreach: bad %s %q: want host:port", f.name, f.v)
		}
	}
	d := &Dialer{cfg: cfg, direct: cfg.Direct}
	if d.direct == nil {
		d.direct = func(ctx context.Context, ap netip.AddrPort) (net.Conn, error) {
			var nd net.Dialer
			return nd.DialContext(ctx, "tcp", ap.String())
		}
	}
	creds := func() Credentials { return RandomCredentials() }
	if cfg.SharedCredentials {
		creds = func() Credentials { return Credentials{} }
	}
	if cfg.Proxy != "" {
		d.proxy = &SOCKS5{Addr: cfg.Proxy, Dial: cfg.ProxyDial, Credentials: creds}
	}
	switch {
	case cfg.TorProxy != "":
		d.tor = &SOCKS5{Addr: cfg.TorProxy, Dial: cfg.ProxyDial, Credentials: creds}
	case d.proxy != nil:
		d.tor = d.proxy
	}
	if cfg.I2PSAM != "" {
		d.sam = NewSAM(cfg.I2PSAM, cfg.ProxyDial)
	}
	if len(cfg.OnlyNet) > 0 {
		d.onlynet = map[wire.NetID]bool{}
		for _, n := range cfg.OnlyNet {
			switch n {
			case wire.NetIPv4, wire.NetIPv6, wire.NetTorV3, wire.NetI2P, wire.NetCJDNS:
			default:
				return nil, fmt.Errorf("netreach: onlynet: %v is not a network we dial", n)
			}
			d.onlynet[n] = true
		}
	}
	return d, nil
}

// Close ends the I2P session, if one was made.
func (d *Dialer) Close() error {
	if d.sam != nil {
		return d.sam.Close()
	}
	return nil
}

// SAM returns the I2P client, nil without I2PSAM.
func (d *Dialer) SAM() *SAM { return d.sam }

// Route says how a would be reached, or why it is not dialled (a
// *NotDialledError). It dials nothing.
func (d *Dialer) Route(a wire.NetAddrV2) (Via, error) {
	n := a.Network
	if d.onlynet != nil && !d.onlynet[n] {
		return 0, &NotDialledError{Network: n, Reason: "onlynet excludes " + n.String(), Err: ErrOnlyNet}
	}
	switch n {
	case wire.NetIPv4, wire.NetIPv6:
		if a.Port == 0 {
			return 0, &NotDialledError{Network: n, Reason: "port 0", Err: ErrBadPort}
		}
		if d.proxy != nil {
			return ViaProxy, nil
		}
		return ViaDirect, nil
	case wire.NetCJDNS:
		if !d.cfg.CJDNSReachable {
			return 0, &NotDialledError{Network: n, Reason: "cjdns: not reachable (no route into fc00::/8 configured)", Err: ErrUnreachable}
		}
		if a.Port == 0 {
			return 0, &NotDialledError{Network: n, Reason: "port 0", Err: ErrBadPort}
		}
		if d.proxy != nil {
			return ViaProxy, nil
		}
		return ViaDirect, nil
	case wire.NetTorV3:
		if d.tor == nil {
			return 0, &NotDialledError{Network: n, Reason: "tor: no proxy configured", Err: ErrNoProxy}
		}
		if a.Port == 0 {
			return 0, &NotDialledError{Network: n, Reason: "port 0", Err: ErrBadPort}
		}
		return ViaTor, nil
	case wire.NetI2P:
		if d.sam == nil {
			return 0, &NotDialledError{Network: n, Reason: "i2p: no SAM bridge configured", Err: ErrNoProxy}
		}
		if a.Port != 0 {
			// As Bitcoin Core: SAM 3.1 has no ports, so a stream to any
			// other port would reach port 0 anyway.
			return 0, &NotDialledError{Network: n, Reason: fmt.Sprintf("i2p: port %d, SAM 3.1 dials only port 0", a.Port), Err: ErrBadPort}
		}
		return ViaSAM, nil
	}
	return 0, &NotDialledError{Network: n, Reason: "unsupported network " + n.String(), Err: ErrUnsupported}
}

// Dial connects to a through its route. An address that is not dialled
// returns a *NotDialledError and nothing is dialled; a SOCKS failure is a
// *SOCKSError, a SAM failure a *SAMError; a direct dial returns what
// Config.Direct returns. Names (.onion, .b32.i2p) go to the proxy or the
// bridge as names and are never resolved here.
func (d *Dialer) Dial(ctx context.Context, a wire.NetAddrV2) (net.Conn, error) {
	via, err := d.Route(a)
	if err != nil {
		return nil, err
	}
	switch via {
	case ViaTor:
		return d.tor.DialDomain(ctx, a.Host(), a.Port)
	case ViaSAM:
		return d.sam.Dial(ctx, a.Host())
	case ViaProxy:
		return d.proxy.DialAddr(ctx, netip.AddrPortFrom(a.IP(), a.Port))
	default:
		return d.direct(ctx, netip.AddrPortFrom(a.IP(), a.Port))
	}
}

// DialName connects to a clearnet host name through Proxy, which resolves
// it (SOCKS5 ATYP domain), so that a name is never looked up locally while
// a proxy is set, as Bitcoin Core's -proxy does for names. Without Proxy it
// returns a *NotDialledError: the caller resolves the name and calls Dial.
// .onion and .b32.i2p names belong to ParsePeer and Dial.
func (d *Dialer) DialName(ctx context.Context, host string, port uint16) (net.Conn, error) {
	l := strings.ToLower(host)
	if strings.HasSuffix(l, ".onion") || strings.HasSuffix(l, ".i2p") {
		return nil, fmt.Errorf("netreach: %q: dial .onion and .i2p names with ParsePeer and Dial", host)
	}
	if d.proxy == nil {
		return nil, &NotDialledError{Reason: "name: no proxy to resolve it", Err: ErrNoProxy}
	}
	if d.onlynet != nil && !d.onlynet[wire.NetIPv4] && !d.onlynet[wire.NetIPv6] {
		return nil, &NotDialledError{Reason: "onlynet excludes ipv4 and ipv6", Err: ErrOnlyNet}
	}
	return d.proxy.DialDomain(ctx, host, port)
}

// netNames are the names ParseOnlyNet accepts, Bitcoin Core's first.
var netNames = map[string]wire.NetID{
	"ipv4": wire.NetIPv4, "ipv6": wire.NetIPv6, "onion": wire.NetTorV3, "tor": wire.NetTorV3,
	"torv3": wire.NetTorV3, "i2p": wire.NetI2P, "cjdns": wire.NetCJDNS,
}

// ParseOnlyNet parses a comma-separated list of networks: ipv4, ipv6,
// onion (or tor, torv3), i2p, cjdns. Blank entries are skipped; an empty
// list means every network.
func ParseOnlyNet(s string) ([]wire.NetID, error) {
	var out []wire.NetID
	for f := range strings.SplitSeq(s, ",") {
		f = strings.ToLower(strings.TrimSpace(f))
		if f == "" {
			continue
		}
		n, ok := netNames[f]
		if !ok {
			return nil, fmt.Errorf("unknown network %q: want ipv4, ipv6, onion, i2p or cjdns", f)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}
