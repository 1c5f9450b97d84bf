package wire

import "encoding/binary"

// empty is the body of messages without a payload.
type empty struct{}

func (empty) AppendPayload(dst []byte) []byte { return dst }

func decodeEmpty(cmd string, payload []byte) error {
	if len(payload) != 0 {
		return decodeErr(cmd, 0, ErrTrailingBytes)
	}
	return nil
}

// Verack acknowledges the peer's version. It has no payload.
type Verack struct{ empty }

// Command returns "verack".
func (*Verack) Command() string { return CmdVerack }

// Decode checks that the payload is empty.
func (*Verack) Decode(p []byte) error { return decodeEmpty(CmdVerack, p) }

// GetAddr asks the peer for addresses. It has no payload.
type GetAddr struct{ empty }

// Command returns "getaddr".
func (*GetAddr) Command() string { return CmdGetAddr }

// Decode checks that the payload is empty.
func (*GetAddr) Decode(p []byte) error { return decodeEmpty(CmdGetAddr, p) }

// SendAddrV2 asks the peer to send addrv2 instead of addr (BIP155). It must
// be sent before verack.
type SendAddrV2 struct{ empty }

// Command returns "sendaddrv2".
func (*SendAddrV2) Command() string { return CmdSendAddrV2 }

// Decode checks that the payload is empty.
func (*SendAddrV2) Decode(p []byte) error { return decodeEmpty(CmdSendAddrV2, p) }

// WTxIDRelay announces transactions by wtxid (BIP339). It must be sent
// before verack.
type WTxIDRelay struct{ empty }

// Command returns "wtxidrelay".
func (*WTxIDRelay) Command() string { return CmdWTxIDRelay }

// Decode checks that the payload is empty.
func (*WTxIDRelay) Decode(p []byte) error { return decodeEmpty(CmdWTxIDRelay, p) }

// SendHeaders asks for new blocks to be announced with headers (BIP130).
type SendHeaders struct{ empty }

// Command returns "sendheaders".
func (*SendHeaders) Command() string { return CmdSendHeaders }

// Decode checks that the payload is empty.
func (*SendHeaders) Decode(p []byte) error { return decodeEmpty(CmdSendHeaders, p) }

// Ping carries a nonce the peer must echo in a pong (BIP31).
//
// Peers older than BIP31 send an empty ping; it decodes with Nonce 0 and
// HasNonce false. Encoding always writes the nonce.
type Ping struct {
	Nonce    uint64
	HasNonce bool
}

// Command returns "ping".
func (*Ping) Command() string { return CmdPing }

// AppendPayload appends the nonce.
func (m *Ping) AppendPayload(dst []byte) []byte {
	return binary.LittleEndian.AppendUint64(dst, m.Nonce)
}

// Decode parses an 8-byte nonce, or an empty legacy ping.
func (m *Ping) Decode(p []byte) error {
	*m = Ping{}
	if len(p) == 0 {
		return nil
	}
	r := reader{cmd: CmdPing, b: p}
	m.Nonce = r.uint64()
	m.HasNonce = r.err == nil
	return r.end()
}

// Pong answers a ping with its nonce (BIP31).
type Pong struct {
	Nonce uint64
}

// Command returns "pong".
func (*Pong) Command() string { return CmdPong }

// AppendPayload appends the nonce.
func (m *Pong) AppendPayload(dst []byte) []byte {
	return binary.LittleEndian.AppendUint64(dst, m.Nonce)
}

// Decode parses the 8-byte nonce.
func (m *Pong) Decode(p []byte) error {
	r := reader{cmd: CmdPong, b: p}
	m.Nonce = r.uint64()
	return r.end()
}

// SendCmpct announces compact block support (BIP152).
type SendCmpct struct {
	Announce bool
	Version  uint64
}

// Command returns "sendcmpct".
func (*SendCmpct) Command() string { return CmdSendCmpct }

// AppendPayload appends the encoded body.
func (m *SendCmpct) AppendPayload(dst []byte) []byte {
	b := byte(0)
	if m.Announce {
		b = 1
	}
	return binary.LittleEndian.AppendUint64(append(dst, b), m.Version)
}

// Decode parses payload into m.
func (m *SendCmpct) Decode(p []byte) error {
	r := reader{cmd: CmdSendCmpct, b: p}
	m.Announce = r.bool()
	m.Version = r.uint64()
	return r.end()
}

// FeeFilter asks the peer not to announce transactions paying less than
// FeeRate satoshis per 1,000 virtual bytes (BIP133).
type FeeFilter struct {
	FeeRate int64
}

// Command returns "feefilter".
func (*FeeFilter) Command() string { return CmdFeeFilter }

// AppendPayload appends the fee rate.
func (m *FeeFilter) AppendPayload(dst []byte) []byte {
	return binary.LittleEndian.AppendUint64(dst, uint64(m.FeeRate))
}

// Decode parses payload into m.
func (m *FeeFilter) Decode(p []byte) error {
	r := reader{cmd: CmdFeeFilter, b: p}
	m.FeeRate = int64(r.uint64())
	return r.end()
}
