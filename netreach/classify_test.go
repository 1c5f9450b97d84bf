package netreach_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/btcpipe/btcpipe/internal/fakesam"
	"github.com/btcpipe/btcpipe/internal/fakesocks"
	"github.com/btcpipe/btcpipe/netreach"
	"github.com/btcpipe/btcpipe/wire"
)

func TestClassify(t *testing.T) {
	socks := func(err error) error { return &netreach.SOCKSError{Proxy: "p", Target: "t", Err: err} }
	sam := func(err error) error { return &netreach.SAMError{Bridge: "b", Op: "STREAM CONNECT", Err: err} }
	tests := []struct {
		name      string
		err       error
		wantClass netreach.Failure
		wantLabel string
	}{
		{"nil", nil, netreach.FailureNone, ""},
		{"direct refused", fmt.Errorf("dial: %w", syscall.ECONNREFUSED), netreach.FailureNone, ""},
		{"not dialled", &netreach.NotDialledError{Reason: "tor: no proxy configured", Err: netreach.ErrNoProxy}, netreach.FailureNotDialled, "tor: no proxy configured"},
		{"socks refused", socks(netreach.ErrSOCKSConnectionRefused), netreach.FailureRefused, "socks: connection refused"},
		{"socks ttl", socks(netreach.ErrSOCKSTTLExpired), netreach.FailureTimeout, "socks: TTL expired"},
		{"socks host unreachable", socks(netreach.ErrSOCKSHostUnreachable), netreach.FailureUnreachable, "socks: host unreachable"},
		{"onion not found", socks(netreach.ErrSOCKSOnionNotFound), netreach.FailureUnreachable, "socks: onion service descriptor not found"},
		{"onion intro timeout", socks(netreach.ErrSOCKSOnionIntroTimeout), netreach.FailureTimeout, "socks: onion service introduction timed out"},
		{"socks not allowed", socks(netreach.ErrSOCKSNotAllowed), netreach.FailureProxy, "socks: connection not allowed by ruleset"},
		{"socks auth", socks(netreach.ErrSOCKSAuthFailed), netreach.FailureProxy, "socks: authentication failed"},
		{"socks ctx", socks(context.DeadlineExceeded), netreach.FailureTimeout, "socks: timeout"},
		{"proxy down", socks(fmt.Errorf("%w: %w", netreach.ErrSOCKSProxyUnreachable, syscall.ECONNREFUSED)), netreach.FailureProxy, "socks: cannot reach the proxy"},
		{"atyp detail", socks(fmt.Errorf("%w: domain name of 300 bytes", netreach.ErrSOCKSAddressNotSupported)), netreach.FailureProxy, "socks: address type not supported"},
		{"sam cant reach", sam(netreach.ErrSAMCantReachPeer), netreach.FailureUnreachable, "i2p: can't reach peer"},
		{"sam timeout", sam(netreach.ErrSAMTimeout), netreach.FailureTimeout, "i2p: timeout"},
		{"sam i2p error", sam(netreach.ErrSAMI2PError), netreach.FailureProxy, "i2p: router error"},
		{"sam bridge", sam(fmt.Errorf("%w: connection closed", netreach.ErrSAMBridge)), netreach.FailureProxy, "i2p: SAM bridge unreachable"},
		{"wrapped", fmt.Errorf("peer x: connect: %w", sam(netreach.ErrSAMKeyNotFound)), netreach.FailureUnreachable, "i2p: name not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			class, label := netreach.Classify(tt.err)
			if class != tt.wantClass || label != tt.wantLabel {
				t.Errorf("got %v %q, want %v %q", class, label, tt.wantClass, tt.wantLabel)
			}
		})
	}
	// Every reply code and RESULT code lands in a class with its own label.
	for _, code := range netreach.SOCKSReplyCodes {
		if class, label := netreach.Classify(socks(netreach.SOCKSReplyErr(code))); class == netreach.FailureNone || label != netreach.SOCKSReplyErr(code).Error() {
			t.Errorf("code 0x%02x: got %v %q", code, class, label)
		}
	}
	for _, r := range netreach.SAMResults {
		if class, label := netreach.Classify(sam(netreach.SAMResultErr(r))); class == netreach.FailureNone || label != netreach.SAMResultErr(r).Error() {
			t.Errorf("RESULT=%s: got %v %q", r, class, label)
		}
	}
}

// TestClassifyRealFailures classifies what Dial returns, end to end.
func TestClassifyRealFailures(t *testing.T) {
	proxy := fakesocks.Start(t, fakesocks.Options{})
	bridge := fakesam.Start(t)
	silent := rawProxy(t, func(c net.Conn) { time.Sleep(300 * time.Millisecond) })
	onion := fakesocks.RandomOnion(8333)
	_, garlic := fakesam.RandomDestination()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().(*net.TCPAddr).AddrPort()
	ln.Close() // nothing listens there now: connects are refused
	refusingOnion := proxy.AddOnion(closed, 8333)
	refusingGarlic := bridge.AddNode(closed)
	tests := []struct {
		name      string
		cfg       netreach.Config
		addr      wire.NetAddrV2
		timeout   time.Duration
		wantClass netreach.Failure
		wantLabel string
	}{
		{"unknown onion", netreach.Config{TorProxy: proxy.Addr().String()}, onion, 5 * time.Second, netreach.FailureUnreachable, "socks: host unreachable"},
		{"tor down", netreach.Config{TorProxy: "127.0.0.1:1"}, onion, 5 * time.Second, netreach.FailureProxy, "socks: cannot reach the proxy"},
		{"tor silent", netreach.Config{TorProxy: silent}, onion, 100 * time.Millisecond, netreach.FailureTimeout, "socks: timeout"},
		{"unknown i2p name", netreach.Config{I2PSAM: bridge.Addr().String()}, garlic, 5 * time.Second, netreach.FailureUnreachable, "i2p: name not found"},
		{"sam down", netreach.Config{I2PSAM: "127.0.0.1:1"}, garlic, 5 * time.Second, netreach.FailureProxy, "i2p: SAM bridge unreachable"},
		{"onion refuses", netreach.Config{TorProxy: proxy.Addr().String()}, refusingOnion, 5 * time.Second, netreach.FailureRefused, "socks: connection refused"},
		{"i2p node refuses", netreach.Config{I2PSAM: bridge.Addr().String()}, refusingGarlic, 5 * time.Second, netreach.FailureUnreachable, "i2p: can't reach peer"},
		{"no tor", netreach.Config{}, onion, 5 * time.Second, netreach.FailureNotDialled, "tor: no proxy configured"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := netreach.New(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			ctx, cancel := context.WithTimeout(t.Context(), tt.timeout)
			defer cancel()
			c, err := d.Dial(ctx, tt.addr)
			if err == nil {
				c.Close()
				t.Fatal("dial succeeded")
			}
			class, label := netreach.Classify(err)
			if class != tt.wantClass || label != tt.wantLabel {
				t.Errorf("%v: got %v %q, want %v %q", err, class, label, tt.wantClass, tt.wantLabel)
			}
			if tt.name == "tor down" && !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("%v: the proxy's refusal should still unwrap to ECONNREFUSED", err)
			}
		})
	}
}
