package simnet

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// blackhole binds a socket at ap and listens with a backlog of 0, then
// fills its one-connection accept queue itself. Linux then drops every
// further SYN (the queue is full and nothing accepts), so a connect to it
// times out, as one to a host that drops packets does.
func blackhole(ap netip.AddrPort) (io.Closer, netip.AddrPort, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, ap, err
	}
	h := &hole{fd: fd}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: ap.Addr().As4(), Port: int(ap.Port())}); err != nil {
		h.Close()
		return nil, ap, err
	}
	if err := syscall.Listen(fd, 0); err != nil {
		h.Close()
		return nil, ap, err
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		h.Close()
		return nil, ap, err
	}
	addr := netip.AddrPortFrom(ap.Addr(), uint16(sa.(*syscall.SockaddrInet4).Port))
	h.filler, err = net.DialTimeout("tcp4", addr.String(), 5*time.Second)
	if err != nil {
		h.Close()
		return nil, ap, err
	}
	return h, addr, nil
}

type hole struct {
	fd     int
	filler net.Conn
}

func (h *hole) Close() error {
	var err error
	if h.filler != nil {
		err = h.filler.Close()
	}
	if h.fd >= 0 {
		err = errors.Join(err, syscall.Close(h.fd))
		h.fd = -1
	}
	return err
}
