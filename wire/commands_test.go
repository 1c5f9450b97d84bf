package wire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/btcpipe/btcpipe/wire"
)

func TestMaxPayloadFor(t *testing.T) {
	tests := []struct {
		cmd  string
		want uint32
	}{
		{wire.CmdVerack, 0}, {wire.CmdGetAddr, 0}, {wire.CmdSendAddrV2, 0}, {wire.CmdWTxIDRelay, 0}, {wire.CmdSendHeaders, 0},
		{wire.CmdPing, 8}, {wire.CmdPong, 8},
		{wire.CmdAddr, 3 + 1000*30},
		{wire.CmdAddrV2, 3 + 1000*(4+9+1+3+512+2)},
		{wire.CmdInv, 3 + 50_000*36}, {wire.CmdGetData, 3 + 50_000*36}, {wire.CmdNotFound, 3 + 50_000*36},
		{wire.CmdVersion, 4 + 8 + 8 + 26 + 26 + 8 + 3 + 256 + 4 + 1},
		{wire.CmdTx, wire.MaxPayload}, {wire.CmdBlock, wire.MaxPayload}, {wire.CmdReject, wire.MaxPayload},
		{wire.CmdSendCmpct, wire.MaxPayload}, {wire.CmdFeeFilter, wire.MaxPayload},
		{"somethingnew", wire.MaxPayload}, {"", wire.MaxPayload},
	}
	for _, tt := range tests {
		if got := wire.MaxPayloadFor(tt.cmd); got != tt.want {
			t.Errorf("MaxPayloadFor(%q) = %d, want %d", tt.cmd, got, tt.want)
		}
	}
}

// TestMaxPayloadIsTheLargestValid: the largest valid message of each
// bounded command encodes to exactly its MaxPayloadFor and decodes.
func TestMaxPayloadIsTheLargestValid(t *testing.T) {
	full := func(n int) []wire.InvVect { return make([]wire.InvVect, n) }
	addrs := make([]wire.TimedNetAddr, wire.MaxAddrEntries)
	tests := []struct {
		name string
		msg  wire.Message
	}{
		{"version", &wire.Version{UserAgent: strings.Repeat("a", wire.MaxUserAgentLen)}},
		{"ping", &wire.Ping{Nonce: 1, HasNonce: true}},
		{"pong", &wire.Pong{Nonce: 1}},
		{"addr", &wire.Addr{List: addrs}},
		{"inv", &wire.Inv{InvList: wire.InvList{List: full(wire.MaxInvEntries)}}},
		{"getdata", &wire.GetData{InvList: wire.InvList{List: full(wire.MaxInvEntries)}}},
		{"notfound", &wire.NotFound{InvList: wire.InvList{List: full(wire.MaxInvEntries)}}},
		{"verack", &wire.Verack{}}, {"getaddr", &wire.GetAddr{}}, {"sendaddrv2", &wire.SendAddrV2{}},
		{"wtxidrelay", &wire.WTxIDRelay{}}, {"sendheaders", &wire.SendHeaders{}},
	}
	for _, tt := range tests {
		payload := tt.msg.AppendPayload(nil)
		if got, want := len(payload), int(wire.MaxPayloadFor(tt.msg.Command())); got != want {
			t.Errorf("%s: the largest valid payload is %d bytes, MaxPayloadFor says %d", tt.name, got, want)
		}
		if _, err := wire.Decode(tt.msg.Command(), payload); err != nil {
			t.Errorf("%s: the largest valid payload does not decode: %v", tt.name, err)
		}
	}

	// addrv2: 1,000 entries of an unknown network id (skipped, as BIP155
	// asks) with a MaxAddrV2Len-byte address and the longest services.
	p := wire.AppendVarInt(nil, wire.MaxAddrEntries)
	for range wire.MaxAddrEntries {
		p = binary.LittleEndian.AppendUint32(p, 1)
		p = wire.AppendVarInt(p, ^uint64(0))
		p = append(p, 0xee)
		p = wire.AppendVarBytes(p, bytes.Repeat([]byte{1}, wire.MaxAddrV2Len))
		p = binary.BigEndian.AppendUint16(p, 8333)
	}
	if got, want := len(p), int(wire.MaxPayloadFor(wire.CmdAddrV2)); got != want {
		t.Errorf("addrv2: the largest valid payload is %d bytes, MaxPayloadFor says %d", got, want)
	}
	if _, err := wire.Decode(wire.CmdAddrV2, p); err != nil {
		t.Errorf("addrv2: the largest valid payload does not decode: %v", err)
	}
}

func TestCommandTable(t *testing.T) {
	table := wire.Commands()
	if len(table) != len(wire.KnownCommands) {
		t.Fatalf("%d entries, %d known commands", len(table), len(wire.KnownCommands))
	}
	for i, c := range table {
		if wire.KnownCommands[i] != c.Name {
			t.Errorf("KnownCommands[%d] = %q, table has %q", i, wire.KnownCommands[i], c.Name)
		}
		if got, ok := wire.CommandIndex(c.Name); !ok || got != i {
			t.Errorf("CommandIndex(%q) = %d, %t; want %d, true", c.Name, got, ok, i)
		}
		if !wire.Known(c.Name) {
			t.Errorf("Known(%q) = false", c.Name)
		}
		m := wire.New(c.Name)
		_, raw := m.(*wire.Raw)
		if raw != (c.New == nil) {
			t.Errorf("New(%q) = %T; the table's New is nil: %t", c.Name, m, c.New == nil)
		}
		if m.Command() != c.Name {
			t.Errorf("New(%q).Command() = %q", c.Name, m.Command())
		}
		// The header's command name is the table's constant.
		var h wire.Header
		copy(h.Command[:], c.Name)
		if got := h.CommandName(); got != c.Name {
			t.Errorf("CommandName of %q = %q", c.Name, got)
		}
	}
	if _, ok := wire.CommandIndex("other"); ok || wire.Known("other") {
		t.Errorf("an unknown command is in the table")
	}
	table[0].Name = "changed"
	if wire.Commands()[0].Name == "changed" {
		t.Errorf("Commands returned the table itself, not a copy")
	}
}

func TestEncodeMessageRefusesWhatTheWireRejects(t *testing.T) {
	tests := []struct {
		name string
		msg  wire.Message
		want error
	}{
		{"command of 13 bytes", &wire.Raw{Cmd: "thirteenbytes"}, wire.ErrBadCommand},
		{"empty command", &wire.Raw{Cmd: ""}, wire.ErrBadCommand},
		{"command with a control byte", &wire.Raw{Cmd: "a\nb"}, wire.ErrBadCommand},
		{"raw payload over MaxPayload", &wire.Raw{Cmd: "block", Payload: make([]byte, wire.MaxPayload+1)}, wire.ErrPayloadTooLarge},
		{"addr of 1,001", &wire.Addr{List: make([]wire.TimedNetAddr, wire.MaxAddrEntries+1)}, wire.ErrTooManyEntries},
		{"addrv2 of 1,001", &wire.AddrV2{List: make([]wire.NetAddrV2, wire.MaxAddrEntries+1)}, wire.ErrTooManyEntries},
		{"inv of 50,001", &wire.Inv{InvList: wire.InvList{List: make([]wire.InvVect, wire.MaxInvEntries+1)}}, wire.ErrTooManyEntries},
		{"getdata of 50,001", &wire.GetData{InvList: wire.InvList{List: make([]wire.InvVect, wire.MaxInvEntries+1)}}, wire.ErrTooManyEntries},
		{"user agent of 257", &wire.Version{UserAgent: strings.Repeat("u", wire.MaxUserAgentLen+1)}, wire.ErrStringTooLong},
		{"reject reason of 112", &wire.Reject{Message: "tx", Reason: strings.Repeat("r", wire.MaxRejectMessageLen+1)}, wire.ErrStringTooLong},
		{"ping carried raw, 9 bytes", &wire.Raw{Cmd: wire.CmdPing, Payload: make([]byte, 9)}, wire.ErrPayloadTooLarge},
		{"verack carried raw, 1 byte", &wire.Raw{Cmd: wire.CmdVerack, Payload: []byte{0}}, wire.ErrPayloadTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("kept")
			got, err := wire.EncodeMessage(dst, wire.Regtest.Magic, tt.msg)
			if !errors.Is(err, tt.want) {
				t.Fatalf("EncodeMessage = %v, want %v", err, tt.want)
			}
			var ee *wire.EncodeError
			if !errors.As(err, &ee) || ee.Command != tt.msg.Command() {
				t.Errorf("error %v is not an *EncodeError naming %q", err, tt.msg.Command())
			}
			if string(got) != "kept" {
				t.Errorf("dst = %q after a refusal, want it unchanged", got)
			}
		})
	}
}

func TestEncodeMessageMatchesAppendMessage(t *testing.T) {
	for _, s := range samples(t) {
		got, err := wire.EncodeMessage(nil, wire.Regtest.Magic, s.msg)
		if err != nil {
			t.Errorf("%s: EncodeMessage: %v", s.name, err)
			continue
		}
		if want := wire.AppendMessage(nil, wire.Regtest.Magic, s.msg); !bytes.Equal(got, want) {
			t.Errorf("%s: EncodeMessage = %x, want %x", s.name, got, want)
		}
	}
}

func TestEncodeMessageAllocatesNothingWithCapacity(t *testing.T) {
	skipAllocsUnderRace(t)
	m := &wire.Addr{List: make([]wire.TimedNetAddr, wire.MaxAddrEntries)}
	buf := make([]byte, 0, wire.HeaderSize+wire.MaxAddrPayload)
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := wire.EncodeMessage(buf, wire.Regtest.Magic, m); err != nil {
			panic(err)
		}
	})
	if allocs != 0 {
		t.Errorf("EncodeMessage(addr, 1,000) with capacity allocates %v times, want 0", allocs)
	}
}
