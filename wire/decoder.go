package wire

// New returns a new, empty message for cmd: the matching type for the
// commands this package decodes, else a *Raw carrying cmd.
func New(cmd string) Message {
	switch cmd {
	case CmdVersion:
		return new(Version)
	case CmdVerack:
		return new(Verack)
	case CmdPing:
		return new(Ping)
	case CmdPong:
		return new(Pong)
	case CmdGetAddr:
		return new(GetAddr)
	case CmdAddr:
		return new(Addr)
	case CmdAddrV2:
		return new(AddrV2)
	case CmdSendAddrV2:
		return new(SendAddrV2)
	case CmdWTxIDRelay:
		return new(WTxIDRelay)
	case CmdSendHeaders:
		return new(SendHeaders)
	case CmdSendCmpct:
		return new(SendCmpct)
	case CmdFeeFilter:
		return new(FeeFilter)
	case CmdInv:
		return new(Inv)
	case CmdGetData:
		return new(GetData)
	case CmdNotFound:
		return new(NotFound)
	case CmdReject:
		return new(Reject)
	}
	return &Raw{Cmd: cmd}
}

// Decode decodes payload as a message of command cmd into a new message (a
// *Raw for commands this package does not decode).
func Decode(cmd string, payload []byte) (Message, error) {
	m := New(cmd)
	if err := m.Decode(payload); err != nil {
		return nil, err
	}
	return m, nil
}

// Decoder decodes payloads into messages it owns and reuses, one per
// command, so that a long-lived decoder allocates nothing in steady state
// (addr and inv lists keep their capacity; the strings of version and reject
// are the only things it allocates).
//
// A message returned by Decoder.Decode is valid until the next call to
// Decode for the same command; a *Raw's Payload aliases the payload passed in.
// A Decoder is not safe for concurrent use.
type Decoder struct {
	version     Version
	verack      Verack
	ping        Ping
	pong        Pong
	getAddr     GetAddr
	addr        Addr
	addrV2      AddrV2
	sendAddrV2  SendAddrV2
	wtxidRelay  WTxIDRelay
	sendHeaders SendHeaders
	sendCmpct   SendCmpct
	feeFilter   FeeFilter
	inv         Inv
	getData     GetData
	notFound    NotFound
	reject      Reject
	raw         Raw
}

// Decode decodes payload as a message of command cmd. See the type's
// documentation for the lifetime of the result.
func (d *Decoder) Decode(cmd string, payload []byte) (Message, error) {
	var m Message
	switch cmd {
	case CmdVersion:
		m = &d.version
	case CmdVerack:
		m = &d.verack
	case CmdPing:
		m = &d.ping
	case CmdPong:
		m = &d.pong
	case CmdGetAddr:
		m = &d.getAddr
	case CmdAddr:
		m = &d.addr
	case CmdAddrV2:
		m = &d.addrV2
	case CmdSendAddrV2:
		m = &d.sendAddrV2
	case CmdWTxIDRelay:
		m = &d.wtxidRelay
	case CmdSendHeaders:
		m = &d.sendHeaders
	case CmdSendCmpct:
		m = &d.sendCmpct
	case CmdFeeFilter:
		m = &d.feeFilter
	case CmdInv:
		m = &d.inv
	case CmdGetData:
		m = &d.getData
	case CmdNotFound:
		m = &d.notFound
	case CmdReject:
		m = &d.reject
	default:
		d.raw.Cmd = cmd
		m = &d.raw
	}
	if err := m.Decode(payload); err != nil {
		return nil, err
	}
	return m, nil
}
