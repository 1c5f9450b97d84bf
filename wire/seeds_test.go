package wire_test

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/btcpipe/btcpipe/wire"
)

var updateSeeds = flag.Bool("update-fuzz-seeds", false, "rewrite the generated seeds in testdata/fuzz")

// seedValue is one argument of a fuzz input.
type seedValue any

// marshalSeed renders values in Go's fuzz corpus format ("go test fuzz v1").
func marshalSeed(vals ...seedValue) []byte {
	var b bytes.Buffer
	b.WriteString("go test fuzz v1\n")
	for _, v := range vals {
		switch v := v.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", v)
		case string:
			fmt.Fprintf(&b, "string(%q)\n", v)
		case int:
			fmt.Fprintf(&b, "int(%d)\n", v)
		default:
			panic(fmt.Sprintf("seed value of type %T", v))
		}
	}
	return b.Bytes()
}

// generatedSeeds returns, per fuzz target, named inputs: real messages and
// the edge cases the tests pin.
func generatedSeeds(t testing.TB) map[string]map[string][]byte {
	seeds := map[string]map[string][]byte{}
	add := func(target, name string, vals ...seedValue) {
		if seeds[target] == nil {
			seeds[target] = map[string][]byte{}
		}
		name = strings.NewReplacer("/", "-", " ", "-", ",", "").Replace(name)
		if _, dup := seeds[target][name]; dup {
			panic("duplicate seed " + target + "/" + name)
		}
		seeds[target][name] = marshalSeed(vals...)
	}
	targetOf := map[string]string{
		wire.CmdVersion: "FuzzDecodeVersion", wire.CmdPing: "FuzzDecodePing", wire.CmdPong: "FuzzDecodePong",
		wire.CmdAddr: "FuzzDecodeAddr", wire.CmdAddrV2: "FuzzDecodeAddrV2", wire.CmdInv: "FuzzDecodeInv",
		wire.CmdGetData: "FuzzDecodeInv", wire.CmdNotFound: "FuzzDecodeInv", wire.CmdReject: "FuzzDecodeReject",
		wire.CmdSendCmpct: "FuzzDecodeSendCmpct", wire.CmdFeeFilter: "FuzzDecodeFeeFilter",
		wire.CmdVerack: "FuzzDecodeEmpty", wire.CmdGetAddr: "FuzzDecodeEmpty", wire.CmdSendAddrV2: "FuzzDecodeEmpty",
		wire.CmdWTxIDRelay: "FuzzDecodeEmpty", wire.CmdSendHeaders: "FuzzDecodeEmpty",
	}
	payload := func(cmd, name string, p []byte) {
		if !strings.HasPrefix(name, cmd) {
			name = cmd + "-" + name
		}
		add(targetOf[cmd], name, p)
		add("FuzzDecode", name, cmd, p)
	}

	// Every sample: its payload for its decoder and for FuzzDecode, its frame for FuzzScanFrame.
	var two []byte
	for _, s := range samples(t) {
		p := s.msg.AppendPayload(nil)
		payload(s.msg.Command(), s.name, p)
		frame := wire.AppendMessage(nil, wire.Mainnet.Magic, s.msg)
		add("FuzzScanFrame", s.name, frame)
		if len(two) < 200 {
			two = append(two, frame...)
		}
	}
	// A few small random messages of each type.
	r := rand.New(rand.NewPCG(11, 12))
	for _, cmd := range decodedCommands {
		for i := range 2 {
			m := randMessage(r, cmd)
			if l, ok := m.(*wire.Addr); ok {
				l.List = l.List[:min(len(l.List), 4)]
			}
			if l, ok := m.(*wire.AddrV2); ok {
				l.List = l.List[:min(len(l.List), 4)]
			}
			if l, ok := m.(*wire.Inv); ok {
				l.List = l.List[:min(len(l.List), 4)]
			}
			if l, ok := m.(*wire.GetData); ok {
				l.List = l.List[:min(len(l.List), 4)]
			}
			if l, ok := m.(*wire.NotFound); ok {
				l.List = l.List[:min(len(l.List), 4)]
			}
			payload(cmd, fmt.Sprintf("random-%d", i), m.AppendPayload(nil))
		}
	}

	// Frames.
	add("FuzzScanFrame", "wiki-version", unhex(wikiVersionFrame))
	add("FuzzScanFrame", "wiki-addr", unhex(wikiAddrFrame))
	add("FuzzScanFrame", "wiki-pong", unhex(wikiPongFrame))
	add("FuzzScanFrame", "wiki-verack", unhex(wikiVerackFrame))
	add("FuzzScanFrame", "back-to-back", two)
	add("FuzzScanFrame", "split", unhex(wikiVersionFrame)[:50])
	add("FuzzScanFrame", "header-only", unhex(wikiVersionFrame)[:24])
	add("FuzzScanFrame", "empty", []byte{})
	add("FuzzScanFrame", "bad-magic", wire.AppendMessage(nil, wire.Testnet3.Magic, &wire.Verack{}))
	add("FuzzScanFrame", "bad-command", header(wire.Mainnet.Magic, "ver\x01ack", 0, wire.EmptyChecksum))
	add("FuzzScanFrame", "byte-after-nul", header(wire.Mainnet.Magic, "ping\x00x", 0, wire.EmptyChecksum))
	add("FuzzScanFrame", "empty-command", header(wire.Mainnet.Magic, "", 0, wire.EmptyChecksum))
	add("FuzzScanFrame", "too-large", header(wire.Mainnet.Magic, "block", wire.MaxPayload+1, [4]byte{}))
	add("FuzzScanFrame", "length-max", header(wire.Mainnet.Magic, "block", 0xffffffff, [4]byte{}))
	add("FuzzScanFrame", "bad-checksum", append(header(wire.Mainnet.Magic, "pong", 8, [4]byte{1, 2, 3, 4}), make([]byte, 8)...))
	add("FuzzScanFrame", "unknown-command", wire.AppendFrame(nil, wire.Mainnet.Magic, "tx", []byte{1, 0, 0, 0, 0}))

	// Edge cases per decoder.
	full := unhex(samples(t)[0].hex)
	payload(wire.CmdVersion, "wiki-original-100-bytes", unhex(wikiVersionFrame)[24:])
	payload(wire.CmdVersion, "to-addr-recv", full[:46])
	payload(wire.CmdVersion, "to-nonce", full[:80])
	payload(wire.CmdVersion, "addr-from-no-nonce", full[:72])
	payload(wire.CmdVersion, "relay-2", append(bytes.Clone(full[:len(full)-1]), 2))
	payload(wire.CmdVersion, "ua-256", bytes.Join([][]byte{full[:80], unhex("fd0001"), bytes.Repeat([]byte("u"), 256), unhex("00000000 01")}, nil))
	payload(wire.CmdVersion, "ua-257", bytes.Join([][]byte{full[:80], unhex("fd0101"), bytes.Repeat([]byte("u"), 257), unhex("00000000 01")}, nil))
	payload(wire.CmdVersion, "ua-huge", append(bytes.Clone(full[:80]), unhex("ffffffffffffffffff")...))
	payload(wire.CmdVersion, "ua-non-canonical", append(bytes.Clone(full[:80]), unhex("fd0000")...))
	payload(wire.CmdVersion, "trailing", append(bytes.Clone(full), 0))

	payload(wire.CmdPing, "empty", []byte{})
	payload(wire.CmdPing, "short", make([]byte, 7))
	payload(wire.CmdPing, "long", make([]byte, 9))
	payload(wire.CmdPong, "empty", []byte{})
	payload(wire.CmdSendCmpct, "announce-2", unhex("02 0100000000000000"))
	payload(wire.CmdFeeFilter, "negative", unhex("ffffffffffffffff"))
	payload(wire.CmdVerack, "one-byte", []byte{0})

	payload(wire.CmdAddr, "empty-list", []byte{0})
	payload(wire.CmdAddr, "count-1000-no-bytes", unhex("fde803"))
	payload(wire.CmdAddr, "count-1001", unhex("fde903"))
	payload(wire.CmdAddr, "count-non-canonical", append(unhex("fd0100"), make([]byte, 30)...))
	payload(wire.CmdAddr, "count-huge", unhex("ffffffffffffffffff"))

	e := func(parts ...[]byte) []byte { return append([]byte{byte(len(parts))}, bytes.Join(parts, nil)...) }
	payload(wire.CmdAddrV2, "ipv4", e(entry("00", "01", "04", unhex("01020304"))))
	payload(wire.CmdAddrV2, "ipv6", e(entry("01", "02", "10", unhex("20010db8000000000000000000000001"))))
	payload(wire.CmdAddrV2, "torv3", e(entry("09", "04", "20", unhex(coreTorV3Key))))
	payload(wire.CmdAddrV2, "i2p", e(entry("00", "05", "20", unhex(coreI2PKey))))
	payload(wire.CmdAddrV2, "cjdns", e(entry("00", "06", "10", unhex(coreCJDNSBytes))))
	payload(wire.CmdAddrV2, "torv2-skipped", e(entry("00", "03", "0a", unhex("f1f2f3f4f5f6f7f8f9fa")), entry("00", "01", "04", unhex("01020304"))))
	payload(wire.CmdAddrV2, "ipv6-mapped-skipped", e(entry("00", "02", "10", unhex("00000000000000000000ffff01020304")), entry("00", "01", "04", unhex("01020304"))))
	payload(wire.CmdAddrV2, "ipv6-onioncat-skipped", e(entry("00", "02", "10", unhex("fd87d87eeb43f1f2f3f4f5f6f7f8f9fa"))))
	payload(wire.CmdAddrV2, "yggdrasil-skipped", e(entry("00", "07", "10", unhex("0200000000000000000000000000000a"))))
	payload(wire.CmdAddrV2, "unknown-skipped", e(entry("00", "aa", "04", unhex("01020304")), entry("00", "01", "04", unhex("01020304"))))
	payload(wire.CmdAddrV2, "unknown-512", e(entry("00", "aa", "fd0002", make([]byte, 512))))
	payload(wire.CmdAddrV2, "unknown-513", e(entry("00", "aa", "fd0102", make([]byte, 513))))
	payload(wire.CmdAddrV2, "unknown-2^25", unhex("01 00000000 00 aa fe00000002 01020304050607"))
	payload(wire.CmdAddrV2, "ipv4-wrong-length", e(entry("00", "01", "05", make([]byte, 5))))
	payload(wire.CmdAddrV2, "services-9-bytes", e(entry("ff0000000000000080", "01", "04", unhex("01020304"))))
	payload(wire.CmdAddrV2, "services-non-canonical", e(entry("fd0100", "01", "04", unhex("01020304"))))
	payload(wire.CmdAddrV2, "count-1000-no-bytes", unhex("fde803"))

	payload(wire.CmdInv, "count-50000-no-bytes", unhex("fd50c3"))
	payload(wire.CmdInv, "count-50001", unhex("fd51c3"))
	payload(wire.CmdGetData, "count-non-canonical", append(unhex("fe01000000"), make([]byte, 36)...))

	payload(wire.CmdReject, "tx-no-hash", unhex("027478 10 00"))
	payload(wire.CmdReject, "block", unhex("05626c6f636b 10 00"+strings.Repeat("ab", 32)))
	payload(wire.CmdReject, "reason-111", append(unhex("00 40 6f"), bytes.Repeat([]byte("r"), 111)...))
	payload(wire.CmdReject, "reason-112", append(unhex("00 40 70"), bytes.Repeat([]byte("r"), 112)...))

	add("FuzzDecode", "raw-tx", "tx", []byte{1, 0, 0, 0, 0})
	add("FuzzDecode", "raw-empty-command", "", []byte{})
	add("FuzzDecode", "raw-unknown", "someday", []byte("future"))

	// Primitives.
	for _, v := range []string{"", "00", "fc", "fd", "fdfc00", "fdfd00", "fdffff", "fe", "feffff0000", "fe00000100",
		"feffffffff", "ff", "ffffffff00000000", "ff0000000001000000", "ffffffffffffffffff", "fdfd00ff"} {
		name := v
		if name == "" {
			name = "empty"
		}
		add("FuzzReadVarInt", name, unhex(v))
	}
	add("FuzzReadVarString", "abc", unhex("03616263"), 10)
	add("FuzzReadVarString", "too-long", unhex("04616263"), 3)
	add("FuzzReadVarString", "ua-256", append(unhex("fd0001"), bytes.Repeat([]byte("u"), 256)...), wire.MaxUserAgentLen)
	add("FuzzReadVarString", "huge", unhex("ffffffffffffffffff"), 1<<20)
	add("FuzzReadVarString", "non-canonical", unhex("fd0300616263"), 10)
	add("FuzzReadVarString", "negative-max", unhex("00"), -1)

	add("FuzzParseTorV3Host", "core", coreTorV3Host)
	add("FuzzParseTorV3Host", "rfc8032", rfc8032Host)
	add("FuzzParseTorV3Host", "upper", strings.ToUpper(coreTorV3Host))
	add("FuzzParseTorV3Host", "bad-checksum", coreTorV3Host[:53]+"a"+coreTorV3Host[54:])
	add("FuzzParseTorV3Host", "i2p", coreI2PHost)
	add("FuzzParseTorV3Host", "torv2", "expyuzz4wqqyqhjn.onion")
	add("FuzzParseTorV3Host", "empty", "")
	add("FuzzParseTorV3Host", "kelvin-sign", strings.Replace(rfc8032Host, "k", "\u212a", 1))
	return seeds
}

// TestFuzzSeeds checks that testdata/fuzz holds every generated seed (and
// with -update-fuzz-seeds writes them), and that every fuzz target has a
// seed directory. Files not generated here (crashers found by fuzzing) are
// left alone.
func TestFuzzSeeds(t *testing.T) {
	seeds := generatedSeeds(t)
	targets := make([]string, 0, len(seeds))
	for target := range seeds {
		targets = append(targets, target)
	}
	sort.Strings(targets)
	for _, target := range targets {
		dir := filepath.Join("testdata", "fuzz", target)
		if *updateSeeds {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			old, _ := filepath.Glob(filepath.Join(dir, "seed-*")) // generated before; crashers have other names
			for _, path := range old {
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
			}
		}
		for name, content := range seeds[target] {
			path := filepath.Join(dir, "seed-"+name)
			if *updateSeeds {
				if err := os.WriteFile(path, content, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(got, content) {
				t.Errorf("%s is missing or stale (%v); run go test -run TestFuzzSeeds ./wire/ -update-fuzz-seeds", path, err)
			}
		}
	}
	want := []string{"FuzzDecode", "FuzzDecodeAddr", "FuzzDecodeAddrV2", "FuzzDecodeEmpty", "FuzzDecodeFeeFilter",
		"FuzzDecodeInv", "FuzzDecodePing", "FuzzDecodePong", "FuzzDecodeReject", "FuzzDecodeSendCmpct",
		"FuzzDecodeVersion", "FuzzParseTorV3Host", "FuzzReadVarInt", "FuzzReadVarString", "FuzzScanFrame"}
	if strings.Join(targets, " ") != strings.Join(want, " ") {
		t.Errorf("seeded targets = %v, want %v", targets, want)
	}
}
