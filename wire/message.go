package wire

// Commands of the messages this package decodes.
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

// KnownCommands lists every command constant above.
var KnownCommands = []string{
	CmdVersion, CmdVerack, CmdPing, CmdPong, CmdGetAddr, CmdAddr, CmdAddrV2,
	CmdSendAddrV2, CmdWTxIDRelay, CmdSendHeaders, CmdSendCmpct, CmdFeeFilter,
	CmdInv, CmdGetData, CmdNotFound, CmdReject, CmdTx, CmdBlock, CmdHeaders,
	CmdGetHeaders, CmdGetBlocks, CmdMempool, CmdCmpctBlock, CmdGetBlockTxn, CmdBlockTxn,
}

// commandString returns the NUL-trimmed command in b, as a constant (no
// allocation) when it is one of KnownCommands.
func commandString(b []byte) string {
	n := 0
	for n < len(b) && b[n] != 0 {
		n++
	}
	b = b[:n]
	switch string(b) { // the compiler does not allocate for a switch on string(b)
	case CmdVersion:
		return CmdVersion
	case CmdVerack:
		return CmdVerack
	case CmdPing:
		return CmdPing
	case CmdPong:
		return CmdPong
	case CmdGetAddr:
		return CmdGetAddr
	case CmdAddr:
		return CmdAddr
	case CmdAddrV2:
		return CmdAddrV2
	case CmdSendAddrV2:
		return CmdSendAddrV2
	case CmdWTxIDRelay:
		return CmdWTxIDRelay
	case CmdSendHeaders:
		return CmdSendHeaders
	case CmdSendCmpct:
		return CmdSendCmpct
	case CmdFeeFilter:
		return CmdFeeFilter
	case CmdInv:
		return CmdInv
	case CmdGetData:
		return CmdGetData
	case CmdNotFound:
		return CmdNotFound
	case CmdReject:
		return CmdReject
	case CmdTx:
		return CmdTx
	case CmdBlock:
		return CmdBlock
	case CmdHeaders:
		return CmdHeaders
	case CmdGetHeaders:
		return CmdGetHeaders
	case CmdGetBlocks:
		return CmdGetBlocks
	case CmdMempool:
		return CmdMempool
	case CmdCmpctBlock:
		return CmdCmpctBlock
	case CmdGetBlockTxn:
		return CmdGetBlockTxn
	case CmdBlockTxn:
		return CmdBlockTxn
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
// slice; it never fails, and the caller is responsible for keeping values
// within the limits (encoding an Addr of 1,001 entries produces a payload
// that decoders refuse).
type Message interface {
	Command() string
	AppendPayload(dst []byte) []byte
	Decode(payload []byte) error
}
