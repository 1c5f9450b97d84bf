// Package hostport parses the peer and seed addresses a person types:
// "host:port", "[v6]:port", "host" or a bare IPv6 address. It is not part
// of the protocol; peer, crawler and cmd/btcpipe share it.
package hostport

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Split splits "host:port", "[v6]:port", "host" or a bare IPv6
// address, using def when there is no port.
func Split(s string, def uint16) (string, uint16, error) {
	if ip, err := netip.ParseAddr(s); err == nil { // a bare address, IPv6 included
		return ip.String(), def, nil
	}
	host, portStr, err := net.SplitHostPort(s)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) && ae.Err == "missing port in address" {
			if s == "" {
				return "", 0, fmt.Errorf("bad peer address %q: empty host", s)
			}
			if h, ok := strings.CutPrefix(s, "["); ok { // "[v6]" without a port
				if h, ok = strings.CutSuffix(h, "]"); ok {
					if ip, err := netip.ParseAddr(h); err == nil {
						return ip.String(), def, nil
					}
				}
				return "", 0, fmt.Errorf("bad peer address %q", s)
			}
			return s, def, nil
		}
		return "", 0, fmt.Errorf("bad peer address %q: %w", s, err)
	}
	p, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || p == 0 {
		return "", 0, fmt.Errorf("bad peer address %q: port must be 1-65535", s)
	}
	if host == "" {
		return "", 0, fmt.Errorf("bad peer address %q: empty host", s)
	}
	return host, uint16(p), nil
}
