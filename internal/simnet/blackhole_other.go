//go:build !linux

package simnet

import (
	"errors"
	"io"
	"net/netip"
)

func blackhole(ap netip.AddrPort) (io.Closer, netip.AddrPort, error) {
	return nil, ap, errors.New("blackhole nodes need Linux")
}
