package stages_test

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/btcpipe/btcpipe/stages"
	"github.com/btcpipe/btcpipe/wire"
)

// magic is the network the tests' streams are framed for.
var magic = wire.Regtest.Magic

// handshakeMessages is what a peer sends in the first moments of a
// connection, and a few things it may send later, including a command the
// wire package does not decode.
func handshakeMessages() []wire.Message {
	ap := netip.MustParseAddrPort
	return []wire.Message{
		&wire.Version{
			Protocol: 70016, Services: wire.ServiceFlag(1033), Timestamp: 1_700_000_000,
			AddrRecv: wire.NetAddr{Addr: ap("127.0.0.1:18444")},
			AddrFrom: wire.NetAddr{Services: 1033, Addr: ap("[::]:0")},
			Nonce:    0x1122334455667788, UserAgent: "/btcwire:0.5.0/btcd:0.26.2/", StartHeight: 0, Relay: true,
		},
		&wire.SendAddrV2{},
		&wire.WTxIDRelay{},
		&wire.Verack{},
		&wire.SendHeaders{},
		&wire.SendCmpct{Announce: false, Version: 2},
		&wire.FeeFilter{FeeRate: 1000},
		&wire.Ping{Nonce: 0xdeadbeef, HasNonce: true},
		&wire.Pong{Nonce: 0xcafe},
		&wire.GetAddr{},
		&wire.Addr{List: []wire.TimedNetAddr{
			{Time: 1_700_000_001, NetAddr: wire.NetAddr{Services: 1, Addr: ap("1.2.3.4:8333")}},
			{Time: 1_700_000_002, NetAddr: wire.NetAddr{Services: 9, Addr: ap("[2001:db8::1]:8333")}},
		}},
		&wire.AddrV2{List: []wire.NetAddrV2{
			wire.NetAddrV2FromAddrPort(ap("5.6.7.8:8333"), 1, 1_700_000_003),
			wire.NetAddrV2{Time: 1_700_000_004, Services: 1, Network: wire.NetTorV3, Port: 8333}.WithKey([32]byte{1, 2, 3}),
		}},
		&wire.Inv{InvList: wire.InvList{List: []wire.InvVect{{Type: wire.InvType(1), Hash: [32]byte{9}}}}},
		&wire.Raw{Cmd: "unknowncmd", Payload: []byte("whatever this is")},
	}
}

// encode frames ms into one stream.
func encode(ms ...wire.Message) []byte {
	var b []byte
	for _, m := range ms {
		b = wire.AppendMessage(b, magic, m)
	}
	return b
}

// handshakeStream is the recorded stream of handshakeMessages.
func handshakeStream() []byte { return encode(handshakeMessages()...) }

// frameBytes re-encodes f exactly as it was received: header fields as
// they came (checksum included) and the payload.
func frameBytes(dst []byte, f *wire.Frame) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(f.Magic))
	dst = append(dst, f.Command[:]...)
	dst = binary.LittleEndian.AppendUint32(dst, f.Length)
	dst = append(dst, f.Checksum[:]...)
	return append(dst, f.Payload...)
}

// slabTracker remembers every slab a test has seen, to check at the end
// that each had all its references returned.
type slabTracker struct{ seen []*stages.Slab }

func (st *slabTracker) add(ss ...*stages.Slab) {
	for _, s := range ss {
		if s != nil && !slices.Contains(st.seen, s) {
			st.seen = append(st.seen, s)
		}
	}
}

// check fails the test for every slab still referenced.
func (st *slabTracker) check(t testing.TB) {
	t.Helper()
	if len(st.seen) == 0 {
		t.Fatal("slabTracker saw no slab: the test checks nothing")
	}
	for i, s := range st.seen {
		if got := s.Refs(); got != 0 {
			t.Errorf("slab %d (%d bytes): %d references left, want 0", i, len(s.B), got)
		}
	}
}

// recorder is an Observer that records what it is told. Safe for
// concurrent use.
type recorder struct {
	mu             sync.Mutex
	framesIn       []string
	checksumFailed [][]byte // payloads of the frames dropped
	decoded        []string
	decodeFailed   []error
	framesOut      [][]byte
	skipped        []string
}

func (r *recorder) Skipped(h *wire.Header) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.skipped = append(r.skipped, h.CommandName())
}

func (r *recorder) FrameIn(f *wire.Frame) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.framesIn = append(r.framesIn, f.CommandName())
}

func (r *recorder) ChecksumFailed(f *wire.Frame) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checksumFailed = append(r.checksumFailed, bytes.Clone(f.Payload))
}

func (r *recorder) Decoded(m wire.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.decoded = append(r.decoded, m.Command())
}

func (r *recorder) DecodeFailed(f *wire.Frame, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.decodeFailed = append(r.decodeFailed, err)
}

func (r *recorder) FrameOut(cmd string, frame []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.framesOut = append(r.framesOut, bytes.Clone(frame))
}

// commandsOf lists the commands of ms.
func commandsOf(ms []wire.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Command()
	}
	return out
}
