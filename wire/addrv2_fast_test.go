package wire

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// decodeAddrV2Careful is AddrV2.Decode with every entry read by the
// careful path (netAddrV2) alone: the reference the fast path is held to.
func decodeAddrV2Careful(p []byte) ([]NetAddrV2, error) {
	r := reader{cmd: CmdAddrV2, b: p}
	n := r.count(MaxAddrEntries, minAddrV2Entry)
	var list []NetAddrV2
	for i := 0; i < n && r.err == nil; i++ {
		var a NetAddrV2
		if r.netAddrV2(&a) {
			list = append(list, a)
		}
	}
	if err := r.end(); err != nil {
		return nil, err
	}
	return list, nil
}

// checkFastPath decodes p with Decode (into a dirty list, as a reused
// message is) and with the careful path alone, and fails on any difference
// in the entries or the error (its sentinel and offset).
func checkFastPath(t *testing.T, p []byte, dirty *AddrV2) {
	t.Helper()
	want, wantErr := decodeAddrV2Careful(p)
	err := dirty.Decode(p)
	var de, wde *DecodeError
	switch {
	case (err == nil) != (wantErr == nil):
		t.Fatalf("payload %x: Decode error %v, careful path %v", p, err, wantErr)
	case err != nil:
		if !errors.As(err, &de) || !errors.As(wantErr, &wde) || *de != *wde {
			t.Fatalf("payload %x: Decode error %v, careful path %v", p, err, wantErr)
		}
		if len(dirty.List) != 0 {
			t.Fatalf("payload %x: %d entries kept after an error", p, len(dirty.List))
		}
	case !slices.Equal(dirty.List, want):
		t.Fatalf("payload %x:\nDecode       %v\ncareful path %v", p, dirty.List, want)
	}
}

// randomAddrV2Entry appends one entry of a random shape: every services
// CompactSize width (canonical or not), every network id this package
// knows and some it does not, right and wrong lengths, and addresses Valid
// refuses.
func randomAddrV2Entry(r *rand.Rand, dst []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, r.Uint32())
	switch r.IntN(10) {
	case 0:
		dst = append(dst, 0xfd, byte(r.IntN(256)), byte(r.IntN(2))) // may be non-canonical
	case 1:
		dst = append(dst, 0xfe)
		dst = binary.LittleEndian.AppendUint32(dst, r.Uint32())
	case 2:
		dst = append(dst, 0xff)
		dst = binary.LittleEndian.AppendUint64(dst, r.Uint64())
	case 3, 4, 5:
		dst = append(dst, 0xfd)
		dst = binary.LittleEndian.AppendUint16(dst, uint16(0xfd+r.IntN(0xff00)))
	default:
		dst = append(dst, byte(r.IntN(0xfd)))
	}
	ids := []NetID{NetIPv4, NetIPv4, NetIPv6, NetIPv6, NetTorV2, NetTorV3, NetI2P, NetCJDNS, 0, 7, 99, 255}
	id := ids[r.IntN(len(ids))]
	size := id.addrLen()
	switch {
	case id == NetTorV2:
		size = 10
	case size == 0:
		size = r.IntN(40)
	case r.IntN(50) == 0:
		size = r.IntN(40) // a wrong length: ErrBadAddress
	}
	dst = append(dst, byte(id), byte(size))
	addr := make([]byte, size)
	for i := range addr {
		addr[i] = byte(r.Uint32())
	}
	if size >= 16 {
		switch r.IntN(12) { // addresses Valid refuses, and their neighbours
		case 0:
			clear(addr)
		case 1:
			copy(addr, []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff})
		case 2:
			copy(addr, []byte{0xfd, 0x87, 0xd8, 0x7e, 0xeb, 0x43})
		case 3:
			copy(addr, []byte{0xfd, 0x6b, 0x88, 0xc0, 0x87, 0x24})
		case 4:
			copy(addr, []byte{0xfd, 0x6b, 0x88, 0xc0, 0x87, 0x25})
		case 5, 6:
			addr[0] = 0xfc
		}
	} else if size == 4 && r.IntN(8) == 0 {
		clear(addr)
	}
	dst = append(dst, addr...)
	return binary.BigEndian.AppendUint16(dst, uint16(r.Uint32()))
}

// The fast path changes the speed, never the outcome: over random payloads
// of every entry shape, truncated or with bytes left over, Decode and the
// careful path agree on every entry and every error.
func TestAddrV2FastPathAgreesWithCarefulPath(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	dirty := &AddrV2{}
	for range 3000 {
		n := r.IntN(120)
		p := AppendVarInt(nil, uint64(n))
		if r.IntN(20) == 0 {
			p = AppendVarInt(nil, uint64(n+r.IntN(3))) // claims more than it holds
		}
		for range n {
			p = randomAddrV2Entry(r, p)
		}
		switch r.IntN(10) {
		case 0:
			p = p[:r.IntN(len(p)+1)]
		case 1:
			p = append(p, 0)
		}
		checkFastPath(t, p, dirty)
	}
}

// Common entries alone (the shape the fast path takes), with every
// invalid address at every distance from the end of the payload.
func TestAddrV2FastPathInvalidNearEnd(t *testing.T) {
	bad := [][]byte{
		{0, 0, 0, 0}, // 0.0.0.0
		make([]byte, 16),
		{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4},
		{0xfd, 0x87, 0xd8, 0x7e, 0xeb, 0x43, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
		{0xfd, 0x6b, 0x88, 0xc0, 0x87, 0x24, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
	}
	good := []byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}
	entry := func(id NetID, addr []byte) []byte {
		e := []byte{1, 2, 3, 4, 0xfd, 0x09, 0x04, byte(id), byte(len(addr))}
		return append(append(e, addr...), 0x20, 0x8d)
	}
	dirty := &AddrV2{}
	for _, b := range bad {
		id := NetIPv6
		if len(b) == 4 {
			id = NetIPv4
		}
		for n := 1; n <= 12; n++ {
			for at := range n {
				p := AppendVarInt(nil, uint64(n))
				for i := range n {
					if i == at {
						p = append(p, entry(id, b)...)
					} else {
						p = append(p, entry(NetIPv6, good)...)
					}
				}
				checkFastPath(t, p, dirty)
				if got := len(dirty.List); got != n-1 {
					t.Fatalf("%d entries, invalid at %d: kept %d", n, at, got)
				}
			}
		}
	}
}

func FuzzAddrV2FastPath(f *testing.F) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 8 {
		n := r.IntN(30)
		p := AppendVarInt(nil, uint64(n))
		for range n {
			p = randomAddrV2Entry(r, p)
		}
		f.Add(p)
	}
	dirty := &AddrV2{}
	f.Fuzz(func(t *testing.T, p []byte) { checkFastPath(t, p, dirty) })
}

// An entry is 48 bytes with no pointer in it, so that a list of 1,000
// fits in 48 KB that the garbage collector never scans, and the fast path
// stores no pointer (no write barrier). addrv2_amd64.s writes the fields at
// these offsets.
func TestNetAddrV2Layout(t *testing.T) {
	typ := reflect.TypeFor[NetAddrV2]()
	if typ.Size() != 48 {
		t.Errorf("NetAddrV2 is %d bytes, want 48", typ.Size())
	}
	want := map[string]uintptr{"addr": 0, "Services": 32, "Time": 40, "Port": 44, "Network": 46}
	for i := range typ.NumField() {
		f := typ.Field(i)
		switch k := f.Type.Kind(); k {
		case reflect.Array, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		default:
			t.Errorf("field %s is a %v", f.Name, k)
		}
		if off, ok := want[f.Name]; !ok || off != f.Offset {
			t.Errorf("field %s at offset %d, want %d (%v)", f.Name, f.Offset, off, ok)
		}
	}
}

// addrV2Entries (in assembly on amd64) and addrV2EntriesGo read the same
// bytes, decode the same entries into the same slots and raise the same
// suspicion, over random payloads of every shape, into lists left dirty by
// earlier calls.
func TestAddrV2EntriesAgree(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	got, want := make([]NetAddrV2, 130), make([]NetAddrV2, 130)
	for range 5000 {
		var p []byte
		for range r.IntN(130) {
			p = randomAddrV2Entry(r, p)
		}
		if r.IntN(4) == 0 {
			p = p[:r.IntN(len(p)+1)]
		}
		list := r.IntN(131)
		var gs, ws uint8
		goff, gj := addrV2Entries(p, got[:list], &gs)
		woff, wj := addrV2EntriesGo(p, want[:list], &ws)
		if goff != woff || gj != wj || (gs != 0) != (ws != 0) {
			t.Fatalf("payload %x, list of %d: addrV2Entries read %d bytes, %d entries, suspects %d; addrV2EntriesGo %d, %d, %d",
				p, list, goff, gj, gs, woff, wj, ws)
		}
		if !slices.Equal(got[:gj], want[:wj]) {
			t.Fatalf("payload %x:\n%v\n%v", p, got[:gj], want[:wj])
		}
	}
}
