package wire

// Commands of the messages this package decodes. Each has an entry in the
// table of commands (commands.go).
const (
	CmdVersion     = "version"
	CmdVerack      = "verack"
	CmdPing        = "ping"
	CmdPong        = "pong"
	CmdGetAddr     = "getaddr"
	CmdAddr        = "addr"
	CmdAddrV2      = "addrv2"
	CmdSendAddrV2  = "sendaddrv2"
	CmdWTxIDRelay  = "wtxidrelay"
	CmdSendHeaders = "sendheaders"
	CmdSendCmpct   = "sendcmpct"
	CmdFeeFilter   = "feefilter"
	CmdInv         = "inv"
	CmdGetData     = "getdata"
	CmdNotFound    = "notfound"
	CmdReject      = "reject"
	// Commands this package carries as Raw messages, named so that logs and
	// metrics can use them without allocating.
	CmdTx          = "tx"
	CmdBlock       = "block"
	CmdHeaders     = "headers"
	CmdGetHeaders  = "getheaders"
	CmdGetBlocks   = "getblocks"
	CmdMempool     = "mempool"
	CmdCmpctBlock  = "cmpctblock"
	CmdGetBlockTxn = "getblocktxn"
	CmdBlockTxn    = "blocktxn"
)

// commandString returns the NUL-trimmed command in b, as the table's
// constant (no allocation) when it is a known command.
func commandString(b []byte) string {
	n := 0
	for n < len(b) && b[n] != 0 {
		n++
	}
	b = b[:n]
	if i, ok := lookup(string(b)); ok { // string(b) does not escape: no allocation
		return commands[i].Name
	}
	return string(b)
}

// Message is one P2P message body.
//
// Decode parses a whole payload into the receiver, replacing what it held;
// bytes left over after a complete body are an error (ErrTrailingBytes).
// Decoders reuse the receiver's slices when their capacity suffices, so a
// message decoded again and again into the same value allocates nothing once
// warm. Unless a type's documentation says otherwise, a decoded message does
// not alias the payload (Raw does).
//
// AppendPayload appends the encoded body to dst and returns the extended
// slice; it never fails and does not check limits (encoding an Addr of
// 1,001 entries produces a payload that decoders refuse). Check and
// EncodeMessage refuse what the wire would reject.
type Message interface {
	Command() string
	AppendPayload(dst []byte) []byte
	Decode(payload []byte) error
}
