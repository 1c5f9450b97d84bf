package netreach_test

import (
	"testing"

	"github.com/btcpipe/btcpipe/internal/fakesam"
	"github.com/btcpipe/btcpipe/internal/fakesocks"
	"github.com/btcpipe/btcpipe/netreach"
	"github.com/btcpipe/btcpipe/wire"
)

// BenchmarkDial dials a loopback node through fakesocks (Tor) and fakesam
// (I2P), and writes and reads one byte: the full cost of a proxied connect
// on loopback, fakes included.
func BenchmarkDial(b *testing.B) {
	node := startEchoTB(b)
	proxy := fakesocks.Start(b, fakesocks.Options{})
	bridge := fakesam.Start(b)
	d, err := netreach.New(netreach.Config{TorProxy: proxy.Addr().String(), I2PSAM: bridge.Addr().String()})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	for _, bm := range []struct {
		name string
		addr wire.NetAddrV2
	}{
		{"tor", proxy.AddOnion(node, 8333)},
		{"i2p", bridge.AddNode(node)},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.SetBytes(1)
			b.ReportAllocs()
			buf := []byte{1}
			for b.Loop() {
				c, err := d.Dial(b.Context(), bm.addr)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
				if _, err := c.Read(buf); err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
		})
	}
}
