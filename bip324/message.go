package bip324

import "fmt"

// Message types inside packet contents.
const (
	// CommandSize is the length of a long message type's name field.
	CommandSize = 12
	// LongTypeSize is a long message type: 0x00 and the 12-byte name.
	LongTypeSize = 1 + CommandSize
)

// shortIDs is Bitcoin Core's table of one-byte message type ids (net.cpp,
// V2_MESSAGE_IDS): ids 1 to 28 from BIP324, and 37, feature, from BIP434
// (bip-0324/message_type_ids.md). Ids 29 to 36 are only proposed (BIP183)
// and, like every other id, unknown. Index 0 means "12 bytes follow".
var shortIDs = [256]string{
	1: "addr", 2: "block", 3: "blocktxn", 4: "cmpctblock",
	5: "feefilter", 6: "filteradd", 7: "filterclear", 8: "filterload",
	9: "getblocks", 10: "getblocktxn", 11: "getdata", 12: "getheaders",
	13: "headers", 14: "inv", 15: "mempool", 16: "merkleblock",
	17: "notfound", 18: "ping", 19: "pong", 20: "sendcmpct",
	21: "tx", 22: "getcfilters", 23: "cfilter", 24: "getcfheaders",
	25: "cfheaders", 26: "getcfcheckpt", 27: "cfcheckpt", 28: "addrv2",
	37: "feature",
}

// idOf maps a command to its short id; longNames interns the long names we
// know, so decoding them does not allocate.
var (
	idOf      = map[string]byte{}
	longNames = map[string]string{}
)

func init() {
	for id, cmd := range shortIDs {
		if cmd != "" {
			idOf[cmd] = byte(id)
			longNames[cmd] = cmd
		}
	}
	// Commands without a short id that every connection carries.
	for _, cmd := range []string{"version", "verack", "getaddr", "sendaddrv2", "wtxidrelay",
		"sendheaders", "reject", "alert", "sendtxrcncl"} {
		longNames[cmd] = cmd
	}
}

// ShortID returns the one-byte id of command, if it has one.
func ShortID(command string) (byte, bool) {
	id, ok := idOf[command]
	return id, ok
}

// CommandOf returns the command a one-byte id stands for, if any (id 0 is
// not an id: it announces a long message type).
func CommandOf(id byte) (string, bool) {
	cmd := shortIDs[id]
	return cmd, cmd != ""
}

// TypeLen returns the length of command's message type in packet contents:
// 1 for a command with a short id, LongTypeSize for another valid command
// (1 to 12 printable ASCII bytes), 0 for a command that cannot be encoded.
func TypeLen(command string) int {
	if _, ok := idOf[command]; ok {
		return 1
	}
	if len(command) == 0 || len(command) > CommandSize {
		return 0
	}
	for i := 0; i < len(command); i++ {
		if command[i] < 0x20 || command[i] > 0x7e {
			return 0
		}
	}
	return LongTypeSize
}

// AppendContents appends the packet contents of a message to dst: its
// message type (the short id, or 0x00 and the NUL-padded name) and payload.
// It returns ErrBadCommand (and dst unchanged) for a command that is empty,
// longer than 12 bytes or not printable ASCII. It allocates nothing when dst
// has the capacity.
func AppendContents(dst []byte, command string, payload []byte) ([]byte, error) {
	switch TypeLen(command) {
	case 1:
		dst = append(dst, idOf[command])
	case LongTypeSize:
		var name [LongTypeSize]byte
		copy(name[1:], command)
		dst = append(dst, name[:]...)
	default:
		return dst, fmt.Errorf("bip324: command %q: %w", command, ErrBadCommand)
	}
	return append(dst, payload...), nil
}

// DecodeContents splits the contents of a (non-decoy) packet into its
// command and payload, which aliases contents. It does not allocate for a
// short id or a long name it knows; another long name is allocated once.
//
// Errors: ErrEmptyContents for no bytes; ErrUnknownShortID for a one-byte id
// without a message type (Bitcoin Core drops such a message and keeps the
// connection); ErrBadCommand for a long type shorter than 13 bytes or whose
// name is not 1 to 12 printable ASCII bytes followed only by NULs.
func DecodeContents(contents []byte) (command string, payload []byte, err error) {
	if len(contents) == 0 {
		return "", nil, ErrEmptyContents
	}
	if id := contents[0]; id != 0 {
		cmd := shortIDs[id]
		if cmd == "" {
			return "", nil, fmt.Errorf("bip324: id %d: %w", id, ErrUnknownShortID)
		}
		return cmd, contents[1:], nil
	}
	if len(contents) < LongTypeSize {
		return "", nil, fmt.Errorf("bip324: %d bytes for a %d-byte long message type: %w", len(contents), LongTypeSize, ErrBadCommand)
	}
	name := contents[1:LongTypeSize]
	n := 0
	for n < CommandSize && name[n] != 0 {
		if name[n] < 0x20 || name[n] > 0x7e {
			return "", nil, fmt.Errorf("bip324: long message type %q: byte %d is not printable: %w", name, n, ErrBadCommand)
		}
		n++
	}
	if n == 0 {
		return "", nil, fmt.Errorf("bip324: empty long message type: %w", ErrBadCommand)
	}
	for i := n; i < CommandSize; i++ {
		if name[i] != 0 {
			return "", nil, fmt.Errorf("bip324: long message type %q: byte %d after the NUL padding: %w", name, i, ErrBadCommand)
		}
	}
	if cmd, ok := longNames[string(name[:n])]; ok {
		return cmd, contents[LongTypeSize:], nil
	}
	return string(name[:n]), contents[LongTypeSize:], nil
}
