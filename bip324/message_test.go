package bip324

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	btcwire "github.com/btcsuite/btcd/wire/v2"
)

// TestShortIDs pins the table: BIP324's ids 1-28, 37 feature, nothing else.
func TestShortIDs(t *testing.T) {
	want := map[byte]string{
		1: "addr", 2: "block", 3: "blocktxn", 4: "cmpctblock", 5: "feefilter", 6: "filteradd",
		7: "filterclear", 8: "filterload", 9: "getblocks", 10: "getblocktxn", 11: "getdata",
		12: "getheaders", 13: "headers", 14: "inv", 15: "mempool", 16: "merkleblock",
		17: "notfound", 18: "ping", 19: "pong", 20: "sendcmpct", 21: "tx", 22: "getcfilters",
		23: "cfilter", 24: "getcfheaders", 25: "cfheaders", 26: "getcfcheckpt", 27: "cfcheckpt",
		28: "addrv2", 37: "feature",
	}
	for id := range 256 {
		got, ok := CommandOf(byte(id))
		if w, wok := want[byte(id)]; got != w || ok != wok {
			t.Errorf("CommandOf(%d) = %q, %v, want %q, %v", id, got, ok, w, wok)
		}
		if ok {
			if back, _ := ShortID(got); back != byte(id) {
				t.Errorf("ShortID(%q) = %d, want %d", got, back, id)
			}
		}
	}
	if _, ok := ShortID("version"); ok {
		t.Error("version has a short id")
	}
}

func TestContentsRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		cmd     string
		typeLen int
	}{
		{"ping", 1}, {"sendcmpct", 1}, {"feature", 1}, {"addrv2", 1}, {"tx", 1},
		{"version", 13}, {"verack", 13}, {"wtxidrelay", 13}, {"sendaddrv2", 13},
		{"abcdefghijkl", 13}, {"x y", 13},
	} {
		payload := []byte("payload-" + tc.cmd)
		c, err := AppendContents(nil, tc.cmd, payload)
		if err != nil {
			t.Fatalf("%s: %v", tc.cmd, err)
		}
		if len(c) != tc.typeLen+len(payload) || TypeLen(tc.cmd) != tc.typeLen {
			t.Errorf("%s: %d bytes (TypeLen %d), want type of %d", tc.cmd, len(c), TypeLen(tc.cmd), tc.typeLen)
		}
		cmd, p, err := DecodeContents(c)
		if err != nil || cmd != tc.cmd || !bytes.Equal(p, payload) {
			t.Errorf("%s: decoded %q %q %v", tc.cmd, cmd, p, err)
		}
	}
	// Long form of a command that has a short id is accepted too (BIP324 1.0.1).
	cmd, _, err := DecodeContents(append([]byte{0}, "ping\x00\x00\x00\x00\x00\x00\x00\x00"...))
	if err != nil || cmd != "ping" {
		t.Errorf("long ping: %q %v", cmd, err)
	}
}

func TestDecodeContentsErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		contents string
		want     error
	}{
		{"empty", "", ErrEmptyContents},
		{"id 29", "\x1d", ErrUnknownShortID},
		{"id 36", "\x24abc", ErrUnknownShortID},
		{"id 255", "\xff", ErrUnknownShortID},
		{"short long type", "\x00ping", ErrBadCommand},
		{"empty name", "\x00" + strings.Repeat("\x00", 12), ErrBadCommand},
		{"byte after padding", "\x00ping\x00\x00x\x00\x00\x00\x00\x00", ErrBadCommand},
		{"control byte", "\x00pi\x01g\x00\x00\x00\x00\x00\x00\x00\x00", ErrBadCommand},
		{"high byte", "\x00pi\xffg\x00\x00\x00\x00\x00\x00\x00\x00", ErrBadCommand},
	} {
		_, _, err := DecodeContents([]byte(tc.contents))
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.want)
		}
	}
	for _, cmd := range []string{"", "thirteenchars", "tab\t", "é"} {
		if _, err := AppendContents(nil, cmd, nil); !errors.Is(err, ErrBadCommand) {
			t.Errorf("AppendContents(%q): %v, want ErrBadCommand", cmd, err)
		}
	}
}

// TestContentsMatchBtcdWire decodes our contents with btcd's
// wire.ReadV2MessageN for every command both tables know, and checks that
// the ids btcd lacks (blocktxn 3, cmpctblock 4, getblocktxn 10, sendcmpct 20)
// and feature 37 are exactly the ones it cannot read.
func TestContentsMatchBtcdWire(t *testing.T) {
	ping := make([]byte, 8)
	c, _ := AppendContents(nil, "ping", ping)
	msg, _, err := btcwire.ReadV2MessageN(c, btcwire.ProtocolVersion, btcwire.BaseEncoding)
	if err != nil || msg.Command() != "ping" {
		t.Fatalf("btcd reads our ping as %v, %v", msg, err)
	}
	c, _ = AppendContents(nil, "verack", nil)
	if msg, _, err = btcwire.ReadV2MessageN(c, btcwire.ProtocolVersion, btcwire.BaseEncoding); err != nil || msg.Command() != "verack" {
		t.Fatalf("btcd reads our verack as %v, %v", msg, err)
	}
	var missing []byte
	for id := 1; id < 256; id++ {
		cmd, ok := CommandOf(byte(id))
		if !ok {
			continue
		}
		_, _, err := btcwire.ReadV2MessageN([]byte{byte(id)}, btcwire.ProtocolVersion, btcwire.BaseEncoding)
		// btcd fails to decode an empty payload for most commands; only
		// "unknown message" means it lacks the id.
		if err != nil && strings.Contains(err.Error(), "unknown message") {
			missing = append(missing, byte(id))
		}
		_ = cmd
	}
	if want := []byte{3, 4, 10, 20, 37}; !bytes.Equal(missing, want) {
		t.Errorf("ids btcd's wire cannot read: %v, want %v", missing, want)
	}
}
