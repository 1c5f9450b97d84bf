package wire

import (
	"fmt"
	"slices"
)

// CommandInfo is one entry of the table of commands: everything the package
// and its users (the encoders, the decoders, metrics labels, observers,
// the framer's per-command limits) need to know about a command. Adding a
// message is one entry here plus the file of its codec.
type CommandInfo struct {
	// Name is the command, 1 to CommandSize printable bytes.
	Name string
	// MaxPayload is the largest payload a valid message of the command
	// has (MaxPayload for the commands carried as Raw).
	MaxPayload uint32
	// New returns an empty message of the command; nil for a command this
	// package carries as a *Raw.
	New func() Message
}

// Largest valid payloads, computed from the limits beside each type.
const (
	// MaxPingPayload: a BIP31 nonce.
	MaxPingPayload = 8
	// MaxAddrPayload: MaxAddrEntries entries of TimedNetAddrSize, after
	// their count.
	MaxAddrPayload = 3 + MaxAddrEntries*TimedNetAddrSize
	// MaxAddrV2Payload: MaxAddrEntries entries of the largest form: time
	// (4), services (a 9-byte CompactSize), network id (1), address length
	// (3) and MaxAddrV2Len bytes, port (2).
	MaxAddrV2Payload = 3 + MaxAddrEntries*(4+MaxVarIntSize+1+3+MaxAddrV2Len+2)
	// MaxInvPayload: MaxInvEntries entries of InvVectSize, after their
	// count (inv, getdata, notfound).
	MaxInvPayload = 3 + MaxInvEntries*InvVectSize
	// MaxVersionPayload: every field of version, with a user agent of
	// MaxUserAgentLen bytes.
	MaxVersionPayload = 4 + 8 + 8 + NetAddrSize + NetAddrSize + 8 + 3 + MaxUserAgentLen + 4 + 1
)

// commands is the table. Its order is the order of KnownCommands (and so
// of metrics labels).
var commands = [...]CommandInfo{
	{CmdVersion, MaxVersionPayload, func() Message { return new(Version) }},
	{CmdVerack, 0, func() Message { return new(Verack) }},
	{CmdPing, MaxPingPayload, func() Message { return new(Ping) }},
	{CmdPong, MaxPingPayload, func() Message { return new(Pong) }},
	{CmdGetAddr, 0, func() Message { return new(GetAddr) }},
	{CmdAddr, MaxAddrPayload, func() Message { return new(Addr) }},
	{CmdAddrV2, MaxAddrV2Payload, func() Message { return new(AddrV2) }},
	{CmdSendAddrV2, 0, func() Message { return new(SendAddrV2) }},
	{CmdWTxIDRelay, 0, func() Message { return new(WTxIDRelay) }},
	{CmdSendHeaders, 0, func() Message { return new(SendHeaders) }},
	{CmdSendCmpct, MaxPayload, func() Message { return new(SendCmpct) }},
	{CmdFeeFilter, MaxPayload, func() Message { return new(FeeFilter) }},
	{CmdInv, MaxInvPayload, func() Message { return new(Inv) }},
	{CmdGetData, MaxInvPayload, func() Message { return new(GetData) }},
	{CmdNotFound, MaxInvPayload, func() Message { return new(NotFound) }},
	{CmdReject, MaxPayload, func() Message { return new(Reject) }},
	// Carried as Raw.
	{CmdTx, MaxPayload, nil},
	{CmdBlock, MaxPayload, nil},
	{CmdHeaders, MaxPayload, nil},
	{CmdGetHeaders, MaxPayload, nil},
	{CmdGetBlocks, MaxPayload, nil},
	{CmdMempool, MaxPayload, nil},
	{CmdCmpctBlock, MaxPayload, nil},
	{CmdGetBlockTxn, MaxPayload, nil},
	{CmdBlockTxn, MaxPayload, nil},
}

// numCommands is the number of entries of the table.
const numCommands = len(commands)

// byLen lists the table's indices by command length: lookup compares a
// command with the few of its length (at most five), which is cheaper
// than hashing it on the hot path (every frame's command is looked up).
// It is checked at init: no duplicate, every name a valid command.
var byLen = func() (t [CommandSize + 1][]uint8) {
	for i, c := range commands {
		if err := checkCommand(c.Name); err != nil {
			panic(err)
		}
		for _, j := range t[len(c.Name)] {
			if commands[j].Name == c.Name {
				panic(fmt.Sprintf("wire: command %q twice in the table", c.Name))
			}
		}
		if c.MaxPayload > MaxPayload {
			panic(fmt.Sprintf("wire: %s: MaxPayload %d over %d", c.Name, c.MaxPayload, MaxPayload))
		}
		t[len(c.Name)] = append(t[len(c.Name)], uint8(i))
	}
	return t
}()

// lookup returns the table index of cmd. It does not allocate.
func lookup(cmd string) (int, bool) {
	if len(cmd) > CommandSize {
		return 0, false
	}
	for _, i := range byLen[len(cmd)] {
		if commands[i].Name == cmd {
			return int(i), true
		}
	}
	return 0, false
}

// lookupRaw returns the table index of the NUL-padded command field raw (a
// header's 12 bytes). It does not allocate.
func lookupRaw(raw []byte) (int, bool) {
	n := 0
	for n < len(raw) && raw[n] != 0 {
		n++
	}
	return lookup(string(raw[:n])) // string(raw) does not escape: no allocation
}

// CommandIndexOf is CommandIndex for a header's command field (12
// NUL-padded bytes), without making a string of it: it does not allocate,
// for unknown commands either.
func CommandIndexOf(raw *[CommandSize]byte) (int, bool) { return lookupRaw(raw[:]) }

// KnownCommands lists every command of the table, in its order.
var KnownCommands = func() []string {
	out := make([]string, numCommands)
	for i, c := range commands {
		out[i] = c.Name
	}
	return out
}()

// Commands returns a copy of the table of commands.
func Commands() []CommandInfo { return slices.Clone(commands[:]) }

// CommandIndex returns the index of cmd in KnownCommands, and false for a
// command not in the table. It does not allocate.
func CommandIndex(cmd string) (int, bool) {
	return lookup(cmd)
}

// Known reports whether cmd is in the table of commands.
func Known(cmd string) bool {
	_, ok := lookup(cmd)
	return ok
}

// MaxPayloadFor returns the largest payload a valid message of cmd has:
// 0 for the messages without a body, the size of the largest valid
// message for ping, pong, addr, addrv2, inv, getdata, notfound and
// version, and MaxPayload for every other command, known or not.
func MaxPayloadFor(cmd string) uint32 {
	if i, ok := lookup(cmd); ok {
		return commands[i].MaxPayload
	}
	return MaxPayload
}
