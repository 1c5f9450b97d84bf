package wire_test

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"
	"unsafe"

	"github.com/btcpipe/btcpipe/wire"
)

func skipAllocsUnderRace(t *testing.T) {
	t.Helper()
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
}

func TestScanFramePingAllocatesNothing(t *testing.T) {
	skipAllocsUnderRace(t)
	buf := wire.AppendMessage(nil, wire.Mainnet.Magic, &wire.Ping{Nonce: 42, HasNonce: true})
	var sink wire.Frame
	allocs := testing.AllocsPerRun(1000, func() {
		f, n, err := wire.ScanFrame(buf, wire.Mainnet.Magic)
		if err != nil || n != len(buf) {
			panic("ScanFrame failed")
		}
		sink = f
	})
	if allocs != 0 {
		t.Errorf("ScanFrame(ping frame) allocates %v times, want 0", allocs)
	}
	allocs = testing.AllocsPerRun(1000, func() {
		if !sink.Verify() {
			panic("bad checksum")
		}
	})
	if allocs != 0 {
		t.Errorf("Frame.Verify allocates %v times, want 0", allocs)
	}
}

func thousandAddrs() *wire.Addr {
	m := &wire.Addr{List: make([]wire.TimedNetAddr, wire.MaxAddrEntries)}
	for i := range m.List {
		ip := netip.AddrFrom4([4]byte{byte(i >> 8), byte(i), 1, 2})
		if i%2 == 1 {
			ip = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(i >> 8), 15: byte(i)})
		}
		m.List[i] = wire.TimedNetAddr{Time: uint32(1700000000 + i), NetAddr: wire.NetAddr{Services: wire.NodeNetwork, Addr: netip.AddrPortFrom(ip, 8333)}}
	}
	return m
}

func TestDecodeThousandAddrIntoPreallocatedAllocatesNothing(t *testing.T) {
	skipAllocsUnderRace(t)
	payload := thousandAddrs().AppendPayload(nil)
	if got, want := len(payload), 3+1000*30; got != want {
		t.Fatalf("payload %d bytes, want %d", got, want)
	}
	m := wire.Addr{List: make([]wire.TimedNetAddr, 0, 1000)}
	allocs := testing.AllocsPerRun(100, func() {
		if err := m.Decode(payload); err != nil || len(m.List) != 1000 {
			panic("decode failed")
		}
	})
	if allocs != 0 {
		t.Errorf("Addr.Decode(1,000 entries) into a preallocated list allocates %v times, want 0", allocs)
	}

	var d wire.Decoder
	if _, err := d.Decode(wire.CmdAddr, payload); err != nil { // warm up
		t.Fatal(err)
	}
	allocs = testing.AllocsPerRun(100, func() {
		if _, err := d.Decode(wire.CmdAddr, payload); err != nil {
			panic(err)
		}
	})
	if allocs != 0 {
		t.Errorf("warm Decoder.Decode(addr, 1,000 entries) allocates %v times, want 0", allocs)
	}
}

// TestWarmDecoderAllocations: a warm Decoder decodes every sample without
// allocating, except the strings it must copy (a version's user agent; a
// reject's two strings).
func TestWarmDecoderAllocations(t *testing.T) {
	skipAllocsUnderRace(t)
	var d wire.Decoder
	r := rand.New(rand.NewPCG(7, 8))
	inv := &wire.Inv{InvList: wire.InvList{List: make([]wire.InvVect, wire.MaxInvEntries)}}
	for i := range inv.List {
		inv.List[i] = wire.InvVect{Type: wire.InvWTx, Hash: randHash(r)}
	}
	msgs := append(samples(t), sample{name: "inv/50000", msg: inv}, sample{name: "addrv2/1000", msg: &wire.AddrV2{List: randAddrV2Full(r)}})
	for _, s := range msgs {
		cmd, payload := s.msg.Command(), s.msg.AppendPayload(nil)
		if _, err := d.Decode(cmd, payload); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		allocs := testing.AllocsPerRun(20, func() {
			if _, err := d.Decode(cmd, payload); err != nil {
				panic(err)
			}
		})
		want := 0.0
		switch cmd {
		case wire.CmdVersion:
			want = 1
		case wire.CmdReject:
			want = 2
		}
		if allocs > want {
			t.Errorf("%s: warm Decoder.Decode allocates %v times, want at most %v", s.name, allocs, want)
		}
	}
}

func randAddrV2Full(r *rand.Rand) []wire.NetAddrV2 {
	l := make([]wire.NetAddrV2, wire.MaxAddrEntries)
	for i := range l {
		l[i] = randNetAddrV2(r)
	}
	return l
}

// TestHostileLengthsCostNothing: counts and lengths beyond the limit, or
// beyond the bytes present, are refused before anything is allocated; the
// only allocation is the returned error.
func TestHostileLengthsCostNothing(t *testing.T) {
	skipAllocsUnderRace(t)
	tests := []struct {
		name    string
		cmd     string
		payload []byte
	}{
		{name: "addr claims 1000 entries", cmd: wire.CmdAddr, payload: unhex("fde803")},
		{name: "addr claims 2^64-1 entries", cmd: wire.CmdAddr, payload: unhex("ffffffffffffffffff")},
		{name: "addrv2 claims 1000 entries", cmd: wire.CmdAddrV2, payload: unhex("fde803 00000000")},
		{name: "inv claims 50000 entries", cmd: wire.CmdInv, payload: unhex("fd50c3")},
		{name: "getdata claims 2^32-1 entries", cmd: wire.CmdGetData, payload: unhex("feffffffff")},
		{name: "version user agent 2^64-1 bytes", cmd: wire.CmdVersion, payload: append(make([]byte, 80), unhex("ffffffffffffffffff")...)},
		{name: "version user agent 256 bytes, 0 present", cmd: wire.CmdVersion, payload: append(make([]byte, 80), unhex("fd0001")...)},
		{name: "reject reason 2^32-1 bytes", cmd: wire.CmdReject, payload: unhex("00 01 feffffffff")},
		{name: "addrv2 address 2^32-1 bytes", cmd: wire.CmdAddrV2, payload: unhex("01 00000000 00 01 feffffffff")},
	}
	for _, tt := range tests {
		m := wire.New(tt.cmd)
		allocs := testing.AllocsPerRun(100, func() {
			if err := m.Decode(tt.payload); err == nil {
				panic("hostile payload accepted")
			}
		})
		if allocs > 1 {
			t.Errorf("%s: Decode allocates %v times, want at most 1 (the error)", tt.name, allocs)
		}
	}
}

// TestDecodeAllocationBounded measures the bytes a fresh Decode allocates
// for the payloads that give the most entries per byte, and checks them
// against a bound linear in the payload size: at most 16 bytes per payload
// byte plus 1 KiB. (The worst case is addrv2: a 9-byte entry becomes an
// 88-byte NetAddrV2.)
func TestDecodeAllocationBounded(t *testing.T) {
	skipAllocsUnderRace(t)
	minAddrV2 := append(unhex("fde803"), make([]byte, 1000*9)...) // 1,000 entries of unknown id 0
	skippedAll := wire.AddrV2{}
	if err := skippedAll.Decode(minAddrV2); err != nil || len(skippedAll.List) != 0 {
		t.Fatalf("minimal addrv2: %v, %d entries", err, len(skippedAll.List))
	}
	r := rand.New(rand.NewPCG(9, 10))
	tests := []struct {
		name    string
		cmd     string
		payload []byte
	}{
		{name: "addrv2 of 1,000 minimal entries", cmd: wire.CmdAddrV2, payload: minAddrV2},
		{name: "addrv2 of 1,000 ipv4 entries", cmd: wire.CmdAddrV2, payload: (&wire.AddrV2{List: func() []wire.NetAddrV2 {
			l := make([]wire.NetAddrV2, 1000)
			for i := range l {
				l[i] = wire.NetAddrV2{Network: wire.NetIPv4}.WithIP(netip.AddrFrom4([4]byte{1, 2, 3, 4}))
			}
			return l
		}()}).AppendPayload(nil)},
		{name: "addr of 1,000", cmd: wire.CmdAddr, payload: thousandAddrs().AppendPayload(nil)},
		{name: "inv of 50,000", cmd: wire.CmdInv, payload: func() []byte {
			m := &wire.Inv{InvList: wire.InvList{List: make([]wire.InvVect, wire.MaxInvEntries)}}
			for i := range m.List {
				m.List[i] = wire.InvVect{Type: wire.InvTx, Hash: randHash(r)}
			}
			return m.AppendPayload(nil)
		}()},
		{name: "version with 256-byte user agent", cmd: wire.CmdVersion, payload: (&wire.Version{UserAgent: string(make([]byte, 256))}).AppendPayload(nil)},
	}
	for _, tt := range tests {
		var before, after runtime.MemStats
		const runs = 10
		runtime.GC()
		runtime.ReadMemStats(&before)
		for range runs {
			if err := wire.New(tt.cmd).Decode(tt.payload); err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
		}
		runtime.ReadMemStats(&after)
		perRun := (after.TotalAlloc - before.TotalAlloc) / runs
		bound := uint64(16*len(tt.payload) + 1024)
		t.Logf("%s: payload %d bytes, allocates %d bytes (%.1fx)", tt.name, len(tt.payload), perRun, float64(perRun)/float64(len(tt.payload)))
		if perRun > bound {
			t.Errorf("%s: Decode allocates %d bytes for a %d-byte payload, want at most %d", tt.name, perRun, len(tt.payload), bound)
		}
	}
	if got := unsafe.Sizeof(wire.NetAddrV2{}); got > 9*16 {
		t.Errorf("NetAddrV2 is %d bytes; the 16x bound assumes at most %d", got, 9*16)
	}
}

func TestAppendMessageAllocatesNothingWithCapacity(t *testing.T) {
	skipAllocsUnderRace(t)
	msgs := []wire.Message{&wire.Ping{Nonce: 1, HasNonce: true}, thousandAddrs(), &wire.Verack{}, samples(t)[0].msg}
	for _, m := range msgs {
		buf := make([]byte, 0, 64<<10)
		allocs := testing.AllocsPerRun(100, func() {
			buf = wire.AppendMessage(buf[:0], wire.Mainnet.Magic, m)
		})
		if allocs != 0 {
			t.Errorf("%s: AppendMessage into a buffer with room allocates %v times, want 0", m.Command(), allocs)
		}
	}
	payload := make([]byte, 1000)
	allocs := testing.AllocsPerRun(100, func() { _ = wire.Checksum(payload) })
	if allocs != 0 {
		t.Errorf("Checksum allocates %v times, want 0", allocs)
	}
}
