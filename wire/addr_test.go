package wire_test

import (
	"bytes"
	"encoding/base32"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/btcpipe/btcpipe/wire"
)

func TestNetAddr(t *testing.T) {
	tests := []struct {
		name string
		in   wire.NetAddr
		want string
		// back is what decoding gives, when it is not in itself
		back *netip.AddrPort
	}{
		{name: "ipv4", in: wire.NetAddr{Services: wire.NodeNetwork, Addr: mustAddrPort("10.0.0.1:8333")},
			want: "0100000000000000 00000000000000000000ffff0a000001 208d"},
		{name: "ipv6", in: wire.NetAddr{Services: wire.NodeWitness | wire.NodeNetworkLimited, Addr: mustAddrPort("[2001:db8::ff]:1")},
			want: "0804000000000000 20010db80000000000000000000000ff 0001"},
		{name: "ipv4-mapped ipv6 decodes as ipv4", in: wire.NetAddr{Addr: mustAddrPort("[::ffff:1.2.3.4]:65535")},
			want: "0000000000000000 00000000000000000000ffff01020304 ffff", back: ptr(mustAddrPort("1.2.3.4:65535"))},
		{name: "zero value encodes as ::", in: wire.NetAddr{},
			want: "0000000000000000 00000000000000000000000000000000 0000", back: ptr(mustAddrPort("[::]:0"))},
		{name: "zone is dropped", in: wire.NetAddr{Addr: mustAddrPort("[fe80::1%eth0]:8333")},
			want: "0000000000000000 fe800000000000000000000000000001 208d", back: ptr(mustAddrPort("[fe80::1]:8333"))},
		{name: "all service bits", in: wire.NetAddr{Services: ^wire.ServiceFlag(0), Addr: mustAddrPort("255.255.255.255:0")},
			want: "ffffffffffffffff 00000000000000000000ffffffffffff 0000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := wire.AppendNetAddr(nil, tt.in)
			if len(got) != wire.NetAddrSize || wire.NetAddrSize != 26 {
				t.Fatalf("len = %d, NetAddrSize = %d, want 26", len(got), wire.NetAddrSize)
			}
			if want := unhex(tt.want); !bytes.Equal(got, want) {
				t.Fatalf("AppendNetAddr = %x, want %x", got, want)
			}
			// Decode through a one-entry addr.
			timed := wire.AppendTimedNetAddr(nil, wire.TimedNetAddr{Time: 0x01020304, NetAddr: tt.in})
			if len(timed) != wire.TimedNetAddrSize || wire.TimedNetAddrSize != 30 {
				t.Fatalf("timed len = %d, TimedNetAddrSize = %d, want 30", len(timed), wire.TimedNetAddrSize)
			}
			if want := append(unhex("04030201"), got...); !bytes.Equal(timed, want) {
				t.Fatalf("AppendTimedNetAddr = %x, want %x", timed, want)
			}
			var m wire.Addr
			if err := m.Decode(append([]byte{1}, timed...)); err != nil {
				t.Fatal(err)
			}
			want := tt.in
			if tt.back != nil {
				want.Addr = *tt.back
			}
			if got := m.List[0]; got.NetAddr != want || got.Time != 0x01020304 {
				t.Errorf("decoded %+v, want %+v at time 0x01020304", got, want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestTimestamps(t *testing.T) {
	a := wire.TimedNetAddr{Time: 1700000000}
	if got, want := a.Timestamp(), time.Unix(1700000000, 0); !got.Equal(want) {
		t.Errorf("TimedNetAddr.Timestamp = %v, want %v", got, want)
	}
	v := wire.Version{Timestamp: -1}
	if got, want := v.Time(), time.Unix(-1, 0); !got.Equal(want) {
		t.Errorf("Version.Time = %v, want %v", got, want)
	}
}

// entry builds one addrv2 entry: time 0, the given services, network id,
// address length and bytes, port 8333.
func entry(services, netID, length string, addr []byte) []byte {
	return bytes.Join([][]byte{unhex("00000000", services, netID, length), addr, unhex("208d")}, nil)
}

func TestAddrV2Entries(t *testing.T) {
	ipv4 := wire.NetAddrV2{Network: wire.NetIPv4, Port: 8333}.WithIP(mustAddr("1.2.3.4"))
	tests := []struct {
		name       string
		entries    [][]byte
		want       []wire.NetAddrV2
		wantErr    error
		wantOffset int
	}{
		{name: "ipv4", entries: [][]byte{entry("00", "01", "04", unhex("01020304"))}, want: []wire.NetAddrV2{ipv4}},
		{name: "ipv6", entries: [][]byte{entry("01", "02", "10", unhex("20010db8000000000000000000000001"))},
			want: []wire.NetAddrV2{wire.NetAddrV2{Services: 1, Network: wire.NetIPv6, Port: 8333}.WithIP(mustAddr("2001:db8::1"))}},
		// IPv4 and Tor v2 dressed as IPv6 are skipped (BIP155 appendix A; Core; btcd).
		{name: "ipv6 holding ipv4-mapped skipped", entries: [][]byte{entry("00", "02", "10", unhex("00000000000000000000ffff01020304")), entry("00", "01", "04", unhex("01020304"))},
			want: []wire.NetAddrV2{ipv4}},
		{name: "ipv6 holding onioncat skipped", entries: [][]byte{entry("00", "02", "10", unhex("fd87d87eeb43f1f2f3f4f5f6f7f8f9fa")), entry("00", "01", "04", unhex("01020304"))},
			want: []wire.NetAddrV2{ipv4}},
		{name: "ipv6 just outside onioncat kept", entries: [][]byte{entry("00", "02", "10", unhex("fd87d87eeb44f1f2f3f4f5f6f7f8f9fa"))},
			want: []wire.NetAddrV2{wire.NetAddrV2{Network: wire.NetIPv6, Port: 8333}.WithIP(mustAddr("fd87:d87e:eb44:f1f2:f3f4:f5f6:f7f8:f9fa"))}},
		{name: "ipv6 ipv4-compatible (::/96) kept", entries: [][]byte{entry("00", "02", "10", unhex("00000000000000000000000001020304"))},
			want: []wire.NetAddrV2{wire.NetAddrV2{Network: wire.NetIPv6, Port: 8333}.WithIP(mustAddr("::102:304"))}},
		{name: "torv3", entries: [][]byte{entry("00", "04", "20", unhex(coreTorV3Key))},
			want: []wire.NetAddrV2{wire.NetAddrV2{Network: wire.NetTorV3, Port: 8333}.WithKey(key32(t, coreTorV3Key))}},
		{name: "i2p", entries: [][]byte{entry("00", "05", "20", unhex(coreI2PKey))},
			want: []wire.NetAddrV2{wire.NetAddrV2{Network: wire.NetI2P, Port: 8333}.WithKey(key32(t, coreI2PKey))}},
		{name: "cjdns", entries: [][]byte{entry("00", "06", "10", unhex(coreCJDNSBytes))},
			want: []wire.NetAddrV2{wire.NetAddrV2{Network: wire.NetCJDNS, Port: 8333}.WithIP(mustAddr(coreCJDNSHost))}},
		{name: "services as a 9-byte CompactSize", entries: [][]byte{entry("ff0000000000000080", "01", "04", unhex("01020304"))},
			want: []wire.NetAddrV2{wire.NetAddrV2{Services: 1 << 63, Network: wire.NetIPv4, Port: 8333}.WithIP(mustAddr("1.2.3.4"))}},

		// Skipped, as BIP155 asks (unknown ids) and as Bitcoin Core does (Tor v2).
		{name: "unknown id 8 skipped", entries: [][]byte{entry("00", "08", "03", unhex("010203")), entry("00", "01", "04", unhex("01020304"))},
			want: []wire.NetAddrV2{ipv4}},
		// BIP155 has since reserved id 7 for Yggdrasil (16 bytes); this package
		// does not decode it, so it is skipped like an unknown id, whatever its length.
		{name: "yggdrasil (id 7) skipped", entries: [][]byte{entry("00", "07", "10", unhex("0200000000000000000000000000000a")), entry("00", "01", "04", unhex("01020304"))},
			want: []wire.NetAddrV2{ipv4}},
		{name: "unknown id 0 skipped", entries: [][]byte{entry("00", "00", "00", nil)}, want: nil},
		{name: "unknown id 255 with 512 bytes skipped", entries: [][]byte{entry("00", "ff", "fd0002", make([]byte, 512)), entry("00", "01", "04", unhex("01020304"))},
			want: []wire.NetAddrV2{ipv4}},
		{name: "torv2 skipped", entries: [][]byte{entry("00", "03", "0a", unhex("f1f2f3f4f5f6f7f8f9fa")), entry("00", "01", "04", unhex("01020304"))},
			want: []wire.NetAddrV2{ipv4}},
		{name: "torv2 of the wrong length skipped too", entries: [][]byte{entry("00", "03", "07", make([]byte, 7))}, want: nil},

		// A known id with the wrong length is an error, at the length's offset (1 + 4 + 1 + 1).
		{name: "ipv4 of 3 bytes", entries: [][]byte{entry("00", "01", "03", make([]byte, 3))}, wantErr: wire.ErrBadAddress, wantOffset: 7},
		{name: "ipv4 of 16 bytes", entries: [][]byte{entry("00", "01", "10", make([]byte, 16))}, wantErr: wire.ErrBadAddress, wantOffset: 7},
		{name: "ipv6 of 4 bytes", entries: [][]byte{entry("00", "02", "04", make([]byte, 4))}, wantErr: wire.ErrBadAddress, wantOffset: 7},
		{name: "torv3 of 0 bytes", entries: [][]byte{entry("00", "04", "00", nil)}, wantErr: wire.ErrBadAddress, wantOffset: 7},
		{name: "torv3 of 33 bytes", entries: [][]byte{entry("00", "04", "21", make([]byte, 33))}, wantErr: wire.ErrBadAddress, wantOffset: 7},
		{name: "i2p of 3 bytes", entries: [][]byte{entry("00", "05", "03", make([]byte, 3))}, wantErr: wire.ErrBadAddress, wantOffset: 7},
		{name: "cjdns of 1 byte", entries: [][]byte{entry("00", "06", "01", make([]byte, 1))}, wantErr: wire.ErrBadAddress, wantOffset: 7},
		{name: "second entry bad", entries: [][]byte{entry("00", "01", "04", unhex("01020304")), entry("00", "02", "04", make([]byte, 4))},
			wantErr: wire.ErrBadAddress, wantOffset: 1 + 13 + 6},

		// Longer than 512 bytes: an error whatever the id (BIP155; Core: "Address too long").
		{name: "unknown id, 513 bytes", entries: [][]byte{entry("00", "aa", "fd0102", make([]byte, 513))}, wantErr: wire.ErrBadAddress, wantOffset: 7},
		{name: "ipv4 id, 513 bytes", entries: [][]byte{entry("00", "01", "fd0102", make([]byte, 513))}, wantErr: wire.ErrBadAddress, wantOffset: 7},
		// Core's vector: an unknown id with length 0x02000000 and 7 bytes.
		{name: "unknown id, length 2^25", entries: [][]byte{unhex("00000000 00 aa fe00000002 01020304050607")}, wantErr: wire.ErrBadAddress, wantOffset: 7},

		{name: "non-canonical services", entries: [][]byte{entry("fd0100", "01", "04", unhex("01020304"))}, wantErr: wire.ErrNonCanonicalVarInt, wantOffset: 5},
		{name: "non-canonical length", entries: [][]byte{entry("00", "01", "fd0400", unhex("01020304"))}, wantErr: wire.ErrNonCanonicalVarInt, wantOffset: 7},
		{name: "truncated length", entries: [][]byte{unhex("00000000 00 01 fd02")}, wantErr: wire.ErrTruncated, wantOffset: 9},
		{name: "no port", entries: [][]byte{unhex("00000000 00 01 04 01020304")}, wantErr: wire.ErrTruncated, wantOffset: 12},
		{name: "skipped entry cut", entries: [][]byte{unhex("00000000 00 08 03 0102 0304")}, wantErr: wire.ErrTruncated, wantOffset: 12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payload := append([]byte{byte(len(tt.entries))}, bytes.Join(tt.entries, nil)...)
			var m wire.AddrV2
			err := m.Decode(payload)
			if tt.wantErr != nil {
				var de *wire.DecodeError
				if !errors.Is(err, tt.wantErr) || !errors.As(err, &de) {
					t.Fatalf("Decode error = %v, want %v", err, tt.wantErr)
				}
				if de.Offset != tt.wantOffset || de.Command != "addrv2" {
					t.Errorf("DecodeError{%q, %d}, want {addrv2, %d}", de.Command, de.Offset, tt.wantOffset)
				}
				if len(m.List) != 0 {
					t.Errorf("List = %v after an error, want empty", m.List)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !slices.Equal(m.List, tt.want) {
				t.Errorf("List =\n%+v\nwant\n%+v", m.List, tt.want)
			}
		})
	}
}

func TestAppendNetAddrV2(t *testing.T) {
	tests := []struct {
		name string
		in   wire.NetAddrV2
		want string
	}{
		{name: "ipv4", in: wire.NetAddrV2{Time: 1, Services: 0xfd, Network: wire.NetIPv4, Port: 1}.WithIP(mustAddr("1.2.3.4")),
			want: "01000000 fdfd00 01 04 01020304 0001"},
		{name: "ipv4 given as ipv4-mapped", in: wire.NetAddrV2{Network: wire.NetIPv4}.WithIP(mustAddr("::ffff:1.2.3.4")),
			want: "00000000 00 01 04 01020304 0000"},
		{name: "ipv4 with an ipv6 IP encodes 0.0.0.0", in: wire.NetAddrV2{Network: wire.NetIPv4}.WithIP(mustAddr("2001:db8::1")),
			want: "00000000 00 01 04 00000000 0000"},
		{name: "ipv4 with the zero IP encodes 0.0.0.0", in: wire.NetAddrV2{Network: wire.NetIPv4},
			want: "00000000 00 01 04 00000000 0000"},
		{name: "ipv6 given as ipv4 encodes ipv4-mapped", in: wire.NetAddrV2{Network: wire.NetIPv6}.WithIP(mustAddr("1.2.3.4")),
			want: "00000000 00 02 10 00000000000000000000ffff01020304 0000"},
		{name: "ipv6 with the zero IP encodes ::", in: wire.NetAddrV2{Network: wire.NetIPv6},
			want: "00000000 00 02 10 00000000000000000000000000000000 0000"},
		{name: "torv3", in: wire.NetAddrV2{Network: wire.NetTorV3, Port: 9050}.WithKey(key32(t, rfc8032Key)),
			want: "00000000 00 04 20 " + rfc8032Key + " 235a"},
		{name: "i2p", in: wire.NetAddrV2{Network: wire.NetI2P}.WithKey(key32(t, coreI2PKey)),
			want: "00000000 00 05 20 " + coreI2PKey + " 0000"},
		{name: "cjdns", in: wire.NetAddrV2{Network: wire.NetCJDNS, Port: 8333}.WithIP(mustAddr(coreCJDNSHost)),
			want: "00000000 00 06 10 " + coreCJDNSBytes + " 208d"},
		{name: "torv2 has no address to encode", in: wire.NetAddrV2{Network: wire.NetTorV2, Port: 1},
			want: "00000000 00 03 00 0001"},
		{name: "unknown id", in: wire.NetAddrV2{Network: 99, Port: 1},
			want: "00000000 00 63 00 0001"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, want := wire.AppendNetAddrV2(nil, tt.in), unhex(tt.want); !bytes.Equal(got, want) {
				t.Errorf("AppendNetAddrV2 = %x, want %x", got, want)
			}
		})
	}
}

func TestTorV3Host(t *testing.T) {
	tests := []struct {
		name string
		key  string
		want string
	}{
		{name: "Bitcoin Core net_tests", key: coreTorV3Key, want: coreTorV3Host},
		{name: "RFC 8032 test 1 key", key: rfc8032Key, want: rfc8032Host},
	}
	for _, tt := range tests {
		key := key32(t, tt.key)
		if got := wire.TorV3Host(key); got != tt.want {
			t.Errorf("%s: TorV3Host = %q, want %q", tt.name, got, tt.want)
		}
		a := wire.NetAddrV2{Network: wire.NetTorV3, Port: 8333}.WithKey(key)
		if got := a.Host(); got != tt.want {
			t.Errorf("%s: Host = %q, want %q", tt.name, got, tt.want)
		}
		if got, want := a.String(), tt.want+":8333"; got != want {
			t.Errorf("%s: String = %q, want %q", tt.name, got, want)
		}
		back, err := wire.ParseTorV3Host(tt.want)
		if err != nil || back != key {
			t.Errorf("%s: ParseTorV3Host = %x, %v; want %x", tt.name, back, err, key)
		}
		back, err = wire.ParseTorV3Host(strings.ToUpper(tt.want))
		if err != nil || back != key {
			t.Errorf("%s: ParseTorV3Host(upper case) = %x, %v; want %x", tt.name, back, err, key)
		}
	}
}

func TestParseTorV3HostErrors(t *testing.T) {
	// A well-formed name with version byte 4 instead of 3.
	raw := append(unhex(coreTorV3Key), 0, 0, 4)
	version4 := strings.ToLower(base32.StdEncoding.EncodeToString(raw)) + ".onion"
	// One checksum character changed.
	badSum := coreTorV3Host[:53] + "a" + coreTorV3Host[54:]
	if badSum == coreTorV3Host {
		t.Fatal("badSum equals the good name")
	}
	tests := []struct {
		name string
		in   string
	}{
		{name: "empty", in: ""},
		{name: "no .onion", in: strings.TrimSuffix(coreTorV3Host, ".onion")},
		{name: "i2p name", in: coreI2PHost},
		{name: "tor v2 name", in: "expyuzz4wqqyqhjn.onion"},
		{name: "55 characters", in: coreTorV3Host[1:]},
		{name: "57 characters", in: "a" + coreTorV3Host},
		{name: "not base32", in: "1" + coreTorV3Host[1:]},
		{name: "version 4", in: version4},
		{name: "bad checksum", in: badSum},
		// U+212A KELVIN SIGN lower-cases to 'k': the name is right once folded, but not ASCII.
		{name: "kelvin sign for k", in: strings.Replace(rfc8032Host, "k", "\u212a", 1)},
		{name: "trailing newline", in: coreTorV3Host + "\n"},
		{name: "newline inside", in: coreTorV3Host[:10] + "\n" + coreTorV3Host[11:]},
	}
	for _, tt := range tests {
		if key, err := wire.ParseTorV3Host(tt.in); err == nil {
			t.Errorf("%s: ParseTorV3Host(%q) = %x, nil; want an error", tt.name, tt.in, key)
		}
	}
}

func TestNetAddrV2Rendering(t *testing.T) {
	tests := []struct {
		name       string
		in         wire.NetAddrV2
		wantHost   string
		wantString string
		wantAP     netip.AddrPort
		wantOK     bool
	}{
		{name: "ipv4", in: wire.NetAddrV2{Network: wire.NetIPv4, Port: 8333}.WithIP(mustAddr("1.2.3.4")),
			wantHost: "1.2.3.4", wantString: "1.2.3.4:8333", wantAP: mustAddrPort("1.2.3.4:8333"), wantOK: true},
		{name: "ipv6", in: wire.NetAddrV2{Network: wire.NetIPv6, Port: 8333}.WithIP(mustAddr("2001:db8::1")),
			wantHost: "2001:db8::1", wantString: "[2001:db8::1]:8333", wantAP: mustAddrPort("[2001:db8::1]:8333"), wantOK: true},
		{name: "cjdns", in: wire.NetAddrV2{Network: wire.NetCJDNS, Port: 1}.WithIP(mustAddr(coreCJDNSHost)),
			wantHost: coreCJDNSHost, wantString: "[" + coreCJDNSHost + "]:1", wantAP: netip.AddrPortFrom(mustAddr(coreCJDNSHost), 1), wantOK: true},
		{name: "torv3", in: wire.NetAddrV2{Network: wire.NetTorV3, Port: 8333}.WithKey(key32(t, coreTorV3Key)),
			wantHost: coreTorV3Host, wantString: coreTorV3Host + ":8333"},
		{name: "i2p", in: wire.NetAddrV2{Network: wire.NetI2P, Port: 0}.WithKey(key32(t, coreI2PKey)),
			wantHost: coreI2PHost, wantString: coreI2PHost + ":0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.in.Host(); got != tt.wantHost {
				t.Errorf("Host = %q, want %q", got, tt.wantHost)
			}
			if got := tt.in.String(); got != tt.wantString {
				t.Errorf("String = %q, want %q", got, tt.wantString)
			}
			ap, ok := tt.in.AddrPort()
			if ap != tt.wantAP || ok != tt.wantOK {
				t.Errorf("AddrPort = %v, %v; want %v, %v", ap, ok, tt.wantAP, tt.wantOK)
			}
		})
	}
}

func TestNetAddrV2FromAddrPort(t *testing.T) {
	tests := []struct {
		in      string
		wantNet wire.NetID
		wantIP  string
	}{
		{in: "1.2.3.4:8333", wantNet: wire.NetIPv4, wantIP: "1.2.3.4"},
		{in: "[::ffff:1.2.3.4]:8333", wantNet: wire.NetIPv4, wantIP: "1.2.3.4"},
		{in: "[2001:db8::1]:8333", wantNet: wire.NetIPv6, wantIP: "2001:db8::1"},
	}
	for _, tt := range tests {
		got := wire.NetAddrV2FromAddrPort(mustAddrPort(tt.in), wire.NodeNetwork, 42)
		want := wire.NetAddrV2{Time: 42, Services: wire.NodeNetwork, Network: tt.wantNet, Port: 8333}.WithIP(mustAddr(tt.wantIP))
		if got != want {
			t.Errorf("NetAddrV2FromAddrPort(%s) = %+v, want %+v", tt.in, got, want)
		}
	}
}

func TestNetIDString(t *testing.T) {
	tests := []struct {
		id   wire.NetID
		want string
	}{
		{id: wire.NetIPv4, want: "ipv4"},
		{id: wire.NetIPv6, want: "ipv6"},
		{id: wire.NetTorV2, want: "torv2"},
		{id: wire.NetTorV3, want: "torv3"},
		{id: wire.NetI2P, want: "i2p"},
		{id: wire.NetCJDNS, want: "cjdns"},
		{id: 0, want: "net(0)"},
		{id: 255, want: "net(255)"},
	}
	for _, tt := range tests {
		if got := tt.id.String(); got != tt.want {
			t.Errorf("NetID(%d).String() = %q, want %q", uint8(tt.id), got, tt.want)
		}
	}
}

func TestServiceFlagNames(t *testing.T) {
	tests := []struct {
		in        wire.ServiceFlag
		wantNames []string
		wantStr   string
	}{
		{in: 0, wantNames: []string{}, wantStr: "NONE"},
		{in: wire.NodeNetwork, wantNames: []string{"NODE_NETWORK"}, wantStr: "NODE_NETWORK"},
		{in: wire.NodeNetwork | wire.NodeWitness | wire.NodeNetworkLimited,
			wantNames: []string{"NODE_NETWORK", "NODE_WITNESS", "NODE_NETWORK_LIMITED"},
			wantStr:   "NODE_NETWORK|NODE_WITNESS|NODE_NETWORK_LIMITED"},
		{in: wire.NodeGetUTXO | wire.NodeBloom | wire.NodeXThin | wire.NodeCompactFilters | wire.NodeP2PV2,
			wantNames: []string{"NODE_GETUTXO", "NODE_BLOOM", "NODE_XTHIN", "NODE_COMPACT_FILTERS", "NODE_P2P_V2"},
			wantStr:   "NODE_GETUTXO|NODE_BLOOM|NODE_XTHIN|NODE_COMPACT_FILTERS|NODE_P2P_V2"},
		{in: 1<<5 | 1<<63, wantNames: []string{"BIT_5", "BIT_63"}, wantStr: "BIT_5|BIT_63"},
		{in: wire.NodeWitness | 1<<24, wantNames: []string{"NODE_WITNESS", "BIT_24"}, wantStr: "NODE_WITNESS|BIT_24"},
	}
	for _, tt := range tests {
		if got := tt.in.Names(); !slices.Equal(got, tt.wantNames) {
			t.Errorf("ServiceFlag(%#x).Names() = %q, want %q", uint64(tt.in), got, tt.wantNames)
		}
		if got := tt.in.String(); got != tt.wantStr {
			t.Errorf("ServiceFlag(%#x).String() = %q, want %q", uint64(tt.in), got, tt.wantStr)
		}
	}
	// The bit values are Bitcoin Core's.
	bits := map[wire.ServiceFlag]uint{wire.NodeNetwork: 0, wire.NodeGetUTXO: 1, wire.NodeBloom: 2, wire.NodeWitness: 3,
		wire.NodeXThin: 4, wire.NodeCompactFilters: 6, wire.NodeNetworkLimited: 10, wire.NodeP2PV2: 11}
	for f, bit := range bits {
		if f != 1<<bit {
			t.Errorf("%v = %#x, want bit %d", f, uint64(f), bit)
		}
	}
}

func TestNetworks(t *testing.T) {
	tests := []struct {
		name      string
		want      *wire.Network
		wantMagic string
		wantPort  uint16
	}{
		{name: "mainnet", want: &wire.Mainnet, wantMagic: "f9beb4d9", wantPort: 8333},
		{name: "testnet3", want: &wire.Testnet3, wantMagic: "0b110907", wantPort: 18333},
		{name: "testnet4", want: &wire.Testnet4, wantMagic: "1c163f28", wantPort: 48333},
		{name: "signet", want: &wire.Signet, wantMagic: "0a03cf40", wantPort: 38333},
		{name: "regtest", want: &wire.Regtest, wantMagic: "fabfb5da", wantPort: 18444},
		{name: "simnet", want: &wire.Simnet, wantMagic: "161c1412", wantPort: 18555},
	}
	for _, tt := range tests {
		got, err := wire.NetworkByName(tt.name)
		if err != nil || got != tt.want {
			t.Fatalf("NetworkByName(%q) = %v, %v", tt.name, got, err)
		}
		if got.Name != tt.name {
			t.Errorf("%s: Name = %q", tt.name, got.Name)
		}
		b := got.Magic.Bytes()
		if want := unhex(tt.wantMagic); !bytes.Equal(b[:], want) {
			t.Errorf("%s: Magic.Bytes() = %x, want %x", tt.name, b, want)
		}
		if got := got.Magic.String(); got != tt.wantMagic {
			t.Errorf("%s: Magic.String() = %q, want %q", tt.name, got, tt.wantMagic)
		}
		if got.DefaultPort != tt.wantPort {
			t.Errorf("%s: DefaultPort = %d, want %d", tt.name, got.DefaultPort, tt.wantPort)
		}
		// A frame for the network starts with the magic's wire bytes.
		if frame := wire.AppendMessage(nil, got.Magic, &wire.Verack{}); !bytes.Equal(frame[:4], b[:]) {
			t.Errorf("%s: frame starts %x, want %x", tt.name, frame[:4], b)
		}
	}

	aliases := map[string]*wire.Network{"testnet": &wire.Testnet3, " MainNet ": &wire.Mainnet, "REGTEST": &wire.Regtest}
	for name, want := range aliases {
		if got, err := wire.NetworkByName(name); err != nil || got != want {
			t.Errorf("NetworkByName(%q) = %v, %v; want %s", name, got, err, want.Name)
		}
	}
	for _, name := range []string{"", "main", "testnet5", "bitcoin"} {
		got, err := wire.NetworkByName(name)
		if err == nil || got != nil {
			t.Errorf("NetworkByName(%q) = %v, %v; want an error", name, got, err)
			continue
		}
		if !strings.Contains(err.Error(), "mainnet, regtest, signet, simnet, testnet3, testnet4") {
			t.Errorf("NetworkByName(%q) error %q does not list the networks", name, err)
		}
	}
	if got, want := wire.NetworkNames(), []string{"mainnet", "regtest", "signet", "simnet", "testnet3", "testnet4"}; !slices.Equal(got, want) {
		t.Errorf("NetworkNames() = %q, want %q", got, want)
	}
	if len(wire.Mainnet.DNSSeeds) == 0 || len(wire.Regtest.DNSSeeds) != 0 {
		t.Errorf("DNSSeeds: mainnet %d, regtest %d; want some, none", len(wire.Mainnet.DNSSeeds), len(wire.Regtest.DNSSeeds))
	}
}

// TestNetAddrV2Valid: what Bitcoin Core does not take for an address.
func TestNetAddrV2Valid(t *testing.T) {
	ip := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	for _, tt := range []struct {
		name string
		a    wire.NetAddrV2
		want bool
	}{
		{"ipv4", wire.NetAddrV2{Network: wire.NetIPv4}.WithIP(ip("1.2.3.4")), true},
		{"0.0.0.0", wire.NetAddrV2{Network: wire.NetIPv4}.WithIP(ip("0.0.0.0")), false},
		{"ipv6", wire.NetAddrV2{Network: wire.NetIPv6}.WithIP(ip("2001:db8::1")), true},
		{"::", wire.NetAddrV2{Network: wire.NetIPv6}.WithIP(ip("::")), false},
		{"onioncat", wire.NetAddrV2{Network: wire.NetIPv6}.WithIP(ip("fd87:d87e:eb43::1")), false},
		{"core internal", wire.NetAddrV2{Network: wire.NetIPv6}.WithIP(ip("fd6b:88c0:8724::1")), false},
		{"ipv4-mapped as ipv6", wire.NetAddrV2{Network: wire.NetIPv6}.WithIP(ip("::ffff:1.2.3.4")), false},
		{"cjdns", wire.NetAddrV2{Network: wire.NetCJDNS}.WithIP(ip("fc00::1")), true},
		{"cjdns outside fc00::/8", wire.NetAddrV2{Network: wire.NetCJDNS}.WithIP(ip("fd00::1")), false},
		{"torv3", wire.NetAddrV2{Network: wire.NetTorV3}, true},
		{"unknown network", wire.NetAddrV2{Network: 99}, false},
	} {
		if got := tt.a.Valid(); got != tt.want {
			t.Errorf("%s: Valid() = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// The addrv2 decoder skips the entries Core does not keep, and goes on.
func TestAddrV2SkipsInvalid(t *testing.T) {
	entry := func(id wire.NetID, addr []byte) []byte {
		e := []byte{0, 0, 0, 0, 0, byte(id), byte(len(addr))}
		return append(append(e, addr...), 0x20, 0x8d)
	}
	cjdnsBad := netip.MustParseAddr("fd00::1").As16()
	cjdnsGood := netip.MustParseAddr("fc00::1").As16()
	internal := netip.MustParseAddr("fd6b:88c0:8724::1").As16()
	payload := []byte{5}
	payload = append(payload, entry(wire.NetCJDNS, cjdnsBad[:])...)
	payload = append(payload, entry(wire.NetIPv6, internal[:])...)
	payload = append(payload, entry(wire.NetIPv4, []byte{0, 0, 0, 0})...)
	payload = append(payload, entry(wire.NetCJDNS, cjdnsGood[:])...)
	payload = append(payload, entry(wire.NetIPv4, []byte{1, 2, 3, 4})...)
	var m wire.AddrV2
	if err := m.Decode(payload); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range m.List {
		got = append(got, a.String())
	}
	if want := []string{"[fc00::1]:8333", "1.2.3.4:8333"}; !slices.Equal(got, want) {
		t.Errorf("decoded %v, want %v", got, want)
	}
}

// validIPv6 (the decoder's byte-level check) agrees with Valid.
func TestValidIPv6AgreesWithValid(t *testing.T) {
	for _, s := range []string{"::", "::1", "::ffff:1.2.3.4", "::ffff:0:0", "fd87:d87e:eb43::", "fd87:d87e:eb43:ffff::1",
		"fd87:d87e:eb44::1", "fd6b:88c0:8724::5", "fd6b:88c0:8725::5", "2001:db8::1", "fc00::1", "::1:ffff:1.2.3.4"} {
		ip := netip.MustParseAddr(s)
		a := wire.NetAddrV2{Network: wire.NetIPv6}.WithIP(ip)
		b := ip.As16()
		payload := append([]byte{1, 0, 0, 0, 0, 0, byte(wire.NetIPv6), 16}, b[:]...)
		payload = append(payload, 0x20, 0x8d)
		var m wire.AddrV2
		if err := m.Decode(payload); err != nil {
			t.Fatal(err)
		}
		if kept := len(m.List) == 1; kept != a.Valid() {
			t.Errorf("%s: the decoder kept it %v, Valid says %v", s, kept, a.Valid())
		}
	}
}

// WithIP and WithKey set the address of their own networks and leave an
// entry of another network as it was, so that a caller holding both (as a
// key of any network) may chain them; == compares entries.
func TestNetAddrV2WithIPAndKey(t *testing.T) {
	var key [32]byte
	for i := range key {
		key[i] = byte(i + 1)
	}
	ip4, ip6 := mustAddr("1.2.3.4"), mustAddr("2001:db8::1")
	tests := []struct {
		name           string
		a              wire.NetAddrV2
		wantIP         netip.Addr
		wantKey        [32]byte
		wantHost       string
		equalsExpected wire.NetAddrV2
	}{
		{"ipv4, key ignored", wire.NetAddrV2{Network: wire.NetIPv4}.WithIP(ip4).WithKey(key), ip4, [32]byte{}, "1.2.3.4",
			wire.NetAddrV2FromAddrPort(netip.AddrPortFrom(ip4, 0), 0, 0)},
		{"ipv6, key ignored", wire.NetAddrV2{Network: wire.NetIPv6}.WithKey(key).WithIP(ip6), ip6, [32]byte{}, "2001:db8::1",
			wire.NetAddrV2FromAddrPort(netip.AddrPortFrom(ip6, 0), 0, 0)},
		{"torv3, ip ignored", wire.NetAddrV2{Network: wire.NetTorV3}.WithKey(key).WithIP(ip4), netip.Addr{}, key, wire.TorV3Host(key),
			wire.NetAddrV2{Network: wire.NetTorV3}.WithKey(key)},
		{"ipv4 set twice", wire.NetAddrV2{Network: wire.NetIPv4}.WithIP(ip6).WithIP(ip4), ip4, [32]byte{}, "1.2.3.4",
			wire.NetAddrV2{Network: wire.NetIPv4}.WithIP(ip4)},
		{"ipv6 set over a longer one", wire.NetAddrV2{Network: wire.NetIPv6}.WithIP(ip6).WithIP(mustAddr("::1")), mustAddr("::1"), [32]byte{}, "::1",
			wire.NetAddrV2{Network: wire.NetIPv6}.WithIP(mustAddr("::1"))},
	}
	for _, tt := range tests {
		if got := tt.a.IP(); got != tt.wantIP {
			t.Errorf("%s: IP() = %v, want %v", tt.name, got, tt.wantIP)
		}
		if got := tt.a.Key(); got != tt.wantKey {
			t.Errorf("%s: Key() = %x, want %x", tt.name, got, tt.wantKey)
		}
		if got := tt.a.Host(); got != tt.wantHost {
			t.Errorf("%s: Host() = %q, want %q", tt.name, got, tt.wantHost)
		}
		if tt.a != tt.equalsExpected {
			t.Errorf("%s: %v != %v", tt.name, tt.a, tt.equalsExpected)
		}
	}
}
