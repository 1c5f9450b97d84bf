package wire_test

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"

	"github.com/btcpipe/btcpipe/wire"
)

// Frames arrive in pieces: a read may hold several frames, and a frame may
// be split across reads. ScanFrame cuts whole frames from the front of the
// buffered bytes and says when it needs more.
func ExampleScanFrame() {
	magic := wire.Regtest.Magic

	// What a peer sent, as two reads: verack, ping and the first 10 bytes of
	// feefilter, then the rest of feefilter.
	var sent []byte
	sent = wire.AppendMessage(sent, magic, &wire.Verack{})
	sent = wire.AppendMessage(sent, magic, &wire.Ping{Nonce: 42, HasNonce: true})
	sent = wire.AppendMessage(sent, magic, &wire.FeeFilter{FeeRate: 1000})
	reads := [][]byte{sent[:24+32+10], sent[24+32+10:]}

	var d wire.Decoder
	var buf []byte // the rolling receive buffer
	for _, read := range reads {
		buf = append(buf, read...)
		for {
			f, n, err := wire.ScanFrame(buf, magic)
			if err != nil {
				fmt.Println("drop the peer:", err)
				return
			}
			if n == 0 {
				fmt.Printf("need more (%d bytes buffered)\n", len(buf))
				break
			}
			if !f.Verify() {
				fmt.Println("bad checksum; skip the frame")
			} else if m, err := d.Decode(f.CommandName(), f.Payload); err != nil {
				fmt.Println("bad message:", err)
			} else {
				switch m := m.(type) {
				case *wire.Ping:
					fmt.Println("ping, nonce", m.Nonce)
				case *wire.FeeFilter:
					fmt.Println("feefilter,", m.FeeRate, "sat/kvB")
				default:
					fmt.Println(m.Command())
				}
			}
			// f.Payload aliases buf: finish with it before buf is reused.
			buf = buf[n:]
		}
	}
	// Output:
	// verack
	// ping, nonce 42
	// need more (10 bytes buffered)
	// feefilter, 1000 sat/kvB
	// need more (0 bytes buffered)
}

// A version message opens every connection. AppendMessage writes the frame
// header and the payload in one buffer.
func ExampleAppendMessage() {
	v := &wire.Version{
		Protocol:  wire.ProtocolVersion,
		Services:  0, // serves nothing: peers will not ask us for blocks
		Timestamp: 1700000000,
		AddrRecv:  wire.NetAddr{Addr: netip.MustParseAddrPort("127.0.0.1:18444")},
		Nonce:     0x1122334455667788,
		UserAgent: "/btcpipe:0.1.0/",
		Relay:     false, // no transaction invs, please
	}
	frame := wire.AppendMessage(nil, wire.Regtest.Magic, v)
	fmt.Printf("magic    %x\n", frame[0:4])
	fmt.Printf("command  %q\n", frame[4:16])
	fmt.Printf("length   %d\n", binary.LittleEndian.Uint32(frame[16:20]))
	fmt.Printf("checksum %x\n", frame[20:24])
	fmt.Printf("frame    %d bytes\n", len(frame))
	// Output:
	// magic    fabfb5da
	// command  "version\x00\x00\x00\x00\x00"
	// length   101
	// checksum e0368e76
	// frame    125 bytes
}

// Decoding an addr message: IPv4 addresses travel as IPv4-mapped IPv6 and
// come back as plain IPv4.
func ExampleAddr_Decode() {
	// The addr payload of the Bitcoin wiki's protocol documentation.
	payload, _ := hex.DecodeString("01" + "e215104d" + "0100000000000000" + "00000000000000000000ffff0a000001" + "208d")

	var m wire.Addr
	if err := m.Decode(payload); err != nil {
		fmt.Println(err)
		return
	}
	for _, a := range m.List {
		fmt.Println(a.Addr, a.Services, a.Timestamp().UTC())
	}

	// A hostile count is refused before anything is allocated.
	err := m.Decode([]byte{0xfd, 0xe8, 0x03}) // 1,000 entries, no bytes
	fmt.Println(err)
	// Output:
	// 10.0.0.1:8333 NODE_NETWORK 2010-12-21 02:50:10 +0000 UTC
	// wire: addr at offset 3: truncated
}

func ExampleNetworkByName() {
	for _, name := range []string{"mainnet", "testnet", "regtest", "bitcoin"} {
		n, err := wire.NetworkByName(name)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%s: magic %v, port %d\n", n.Name, n.Magic, n.DefaultPort)
	}
	// Output:
	// mainnet: magic f9beb4d9, port 8333
	// testnet3: magic 0b110907, port 18333
	// regtest: magic fabfb5da, port 18444
	// wire: unknown network "bitcoin" (want one of mainnet, regtest, signet, simnet, testnet3, testnet4)
}

// Tor v3 and I2P addresses arrive in addrv2 as 32-byte keys and are
// rendered as host names.
func ExampleTorV3Host() {
	// Bitcoin Core's test vector (src/test/net_tests.cpp).
	key, _ := hex.DecodeString("79bcc625184b05194975c28b66b66b0469f7f6556fb1ac3189a79b40dda32f1f")
	host := wire.TorV3Host([32]byte(key))
	fmt.Println(host)

	back, err := wire.ParseTorV3Host(host)
	fmt.Println(hex.EncodeToString(back[:]) == hex.EncodeToString(key), err)

	i2p, _ := hex.DecodeString("a2894dabaec08c0051a481a6dac88b64f98232ae42d4b6fd2fa81952dfe36a87")
	a := wire.NetAddrV2{Network: wire.NetI2P, Port: 0}.WithKey([32]byte(i2p))
	fmt.Println(a.Network, a)
	// Output:
	// pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion
	// true <nil>
	// i2p ukeu3k5oycgaauneqgtnvselmt4yemvoilkln7jpvamvfx7dnkdq.b32.i2p:0
}
