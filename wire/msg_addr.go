package wire

import (
	"encoding/binary"
	"slices"
)

// MaxAddrEntries is the most entries an addr or addrv2 message may carry.
const MaxAddrEntries = 1000

// minAddrV2Entry is the smallest addrv2 entry: time, 1-byte services, network
// id, empty address, port.
const minAddrV2Entry = 4 + 1 + 1 + 1 + 2

// Addr lists known peer addresses (at most MaxAddrEntries).
//
// Decode reuses List's capacity: a caller that gives it a slice of capacity
// MaxAddrEntries decodes any addr message without allocating.
type Addr struct {
	List []TimedNetAddr
}

// Command returns "addr".
func (*Addr) Command() string { return CmdAddr }

// AppendPayload appends the count and the entries.
func (m *Addr) AppendPayload(dst []byte) []byte {
	dst = AppendVarInt(dst, uint64(len(m.List)))
	for _, a := range m.List {
		dst = AppendTimedNetAddr(dst, a)
	}
	return dst
}

// Decode parses payload into m. The count is checked against MaxAddrEntries
// and against the payload's length before List grows.
func (m *Addr) Decode(p []byte) error {
	r := reader{cmd: CmdAddr, b: p}
	n := r.count(MaxAddrEntries, TimedNetAddrSize)
	// count checked that the n fixed-size entries are there: take them at
	// once and decode each without a check per field.
	body := r.take(n * TimedNetAddrSize)
	m.List = grow(m.List[:0], n)[:n]
	for i := range m.List {
		m.List[i].decodeFrom(body[i*TimedNetAddrSize : (i+1)*TimedNetAddrSize])
	}
	if err := r.end(); err != nil {
		m.List = m.List[:0]
		return err
	}
	return nil
}

// AddrV2 lists known peer addresses in the BIP155 format (at most
// MaxAddrEntries). Entries of unknown network ids (and the deprecated Tor v2)
// are skipped, as BIP155 asks, and so are IPv6 entries holding an
// IPv4-mapped (::ffff:0:0/96) or OnionCat (fd87:d87e:eb43::/48) address, as
// Bitcoin Core and btcd do; an entry of a known id with the wrong address
// length, or any address over MaxAddrV2Len, is an error (ErrBadAddress).
//
// Decode reuses List's capacity like Addr.Decode.
type AddrV2 struct {
	List []NetAddrV2
}

// Command returns "addrv2".
func (*AddrV2) Command() string { return CmdAddrV2 }

// AppendPayload appends the count and the entries.
func (m *AddrV2) AppendPayload(dst []byte) []byte {
	dst = AppendVarInt(dst, uint64(len(m.List)))
	for _, a := range m.List {
		dst = AppendNetAddrV2(dst, a)
	}
	return dst
}

// Decode parses payload into m. Entries of the common shape are decoded
// by a fast path (addrV2Run), the rest one by one (netAddrV2); both decode
// in place, and the skipped entries are dropped at the end.
func (m *AddrV2) Decode(p []byte) error {
	r := reader{cmd: CmdAddrV2, b: p}
	n := r.count(MaxAddrEntries, minAddrV2Entry)
	m.List = grow(m.List[:0], n)[:n]
	skipped := 0
	for j := 0; j < n && r.err == nil; {
		j += r.addrV2Run(m.List[j:], &skipped)
		if j < n {
			if !r.netAddrV2(&m.List[j]) {
				m.List[j].Network = 0
				skipped++
			}
			j++
		}
	}
	if err := r.end(); err != nil {
		m.List = m.List[:0]
		return err
	}
	if skipped > 0 {
		// Network 0 is no BIP155 network: it marks the skipped entries.
		k := 0
		for i := range m.List {
			if m.List[i].Network != 0 {
				m.List[k] = m.List[i]
				k++
			}
		}
		m.List = m.List[:k]
	}
	return nil
}

// grow returns s with room for n more elements, in one allocation if it
// needs one.
func grow[T any](s []T, n int) []T { return slices.Grow(s, n) }

// MaxInvEntries is the most entries an inv, getdata or notfound may carry.
const MaxInvEntries = 50000

// InvVectSize is the size of one inventory entry.
const InvVectSize = 36

// InvType is the type of an inventory entry.
type InvType uint32

// Inventory types.
const (
	InvError         InvType = 0
	InvTx            InvType = 1
	InvBlock         InvType = 2
	InvFilteredBlock InvType = 3
	InvCmpctBlock    InvType = 4
	InvWTx           InvType = 5
	InvWitnessTx     InvType = InvTx | 1<<30
	InvWitnessBlock  InvType = InvBlock | 1<<30
)

// InvVect is one inventory entry: a type and a hash (in wire byte order).
type InvVect struct {
	Type InvType
	Hash [32]byte
}

// InvList is the body shared by inv, getdata and notfound. Decode reuses
// List's capacity.
type InvList struct {
	List []InvVect
}

// AppendPayload appends the count and the entries.
func (m *InvList) AppendPayload(dst []byte) []byte {
	dst = AppendVarInt(dst, uint64(len(m.List)))
	for _, v := range m.List {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(v.Type))
		dst = append(dst, v.Hash[:]...)
	}
	return dst
}

func (m *InvList) decode(cmd string, p []byte) error {
	r := reader{cmd: cmd, b: p}
	n := r.count(MaxInvEntries, InvVectSize)
	// As in Addr.Decode: the n entries are there; decode each in place.
	body := r.take(n * InvVectSize)
	m.List = grow(m.List[:0], n)[:n]
	for i := range m.List {
		e := body[i*InvVectSize : (i+1)*InvVectSize]
		v := &m.List[i]
		v.Type = InvType(binary.LittleEndian.Uint32(e[0:4]))
		v.Hash = [32]byte(e[4:InvVectSize])
	}
	if err := r.end(); err != nil {
		m.List = m.List[:0]
		return err
	}
	return nil
}

// Inv announces inventory.
type Inv struct{ InvList }

// Command returns "inv".
func (*Inv) Command() string { return CmdInv }

// Decode parses payload into m.
func (m *Inv) Decode(p []byte) error { return m.decode(CmdInv, p) }

// GetData requests inventory.
type GetData struct{ InvList }

// Command returns "getdata".
func (*GetData) Command() string { return CmdGetData }

// Decode parses payload into m.
func (m *GetData) Decode(p []byte) error { return m.decode(CmdGetData, p) }

// NotFound answers a getdata for inventory the peer does not have.
type NotFound struct{ InvList }

// Command returns "notfound".
func (*NotFound) Command() string { return CmdNotFound }

// Decode parses payload into m.
func (m *NotFound) Decode(p []byte) error { return m.decode(CmdNotFound, p) }
