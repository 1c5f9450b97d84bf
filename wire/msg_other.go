package wire

// Limits of the legacy reject message (BIP61).
const (
	// MaxRejectMessageLen bounds the rejected command and the reason.
	MaxRejectMessageLen = 111
)

// RejectCode is a BIP61 reject code.
type RejectCode uint8

// BIP61 reject codes.
const (
	RejectMalformed       RejectCode = 0x01
	RejectInvalid         RejectCode = 0x10
	RejectObsolete        RejectCode = 0x11
	RejectDuplicate       RejectCode = 0x12
	RejectNonstandard     RejectCode = 0x40
	RejectDust            RejectCode = 0x41
	RejectInsufficientFee RejectCode = 0x42
	RejectCheckpoint      RejectCode = 0x43
)

// Reject is the legacy BIP61 reject message (removed from Bitcoin Core, still
// sent by btcd). Hash is present only when the rejected command is "tx" or
// "block", as btcd encodes it.
type Reject struct {
	Message string // the command that was rejected
	Code    RejectCode
	Reason  string
	Hash    [32]byte
}

// Command returns "reject".
func (*Reject) Command() string { return CmdReject }

func (m *Reject) hasHash() bool { return m.Message == CmdTx || m.Message == CmdBlock }

// AppendPayload appends the encoded body.
func (m *Reject) AppendPayload(dst []byte) []byte {
	dst = AppendVarString(dst, m.Message)
	dst = append(dst, byte(m.Code))
	dst = AppendVarString(dst, m.Reason)
	if m.hasHash() {
		dst = append(dst, m.Hash[:]...)
	}
	return dst
}

// Decode parses payload into m.
func (m *Reject) Decode(p []byte) error {
	*m = Reject{}
	r := reader{cmd: CmdReject, b: p}
	m.Message = string(r.varBytes(MaxRejectMessageLen))
	m.Code = RejectCode(r.uint8())
	m.Reason = string(r.varBytes(MaxRejectMessageLen))
	if r.err == nil && m.hasHash() {
		if h := r.take(32); h != nil {
			m.Hash = [32]byte(h)
		}
	}
	return r.end()
}

// Raw is a message this package does not decode: its command and payload as
// they came. Payload aliases the frame it was decoded from and is valid only
// as long as that frame's buffer is.
type Raw struct {
	Cmd     string
	Payload []byte
}

// Command returns the raw command.
func (m *Raw) Command() string { return m.Cmd }

// AppendPayload appends the payload unchanged.
func (m *Raw) AppendPayload(dst []byte) []byte { return append(dst, m.Payload...) }

// Decode keeps p as the payload, without copying.
func (m *Raw) Decode(p []byte) error {
	m.Payload = p
	return nil
}
