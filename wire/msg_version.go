package wire

import (
	"encoding/binary"
	"time"
)

// Version message limits and constants.
const (
	// ProtocolVersion is the protocol version btcpipe speaks (BIP155 addrv2
	// and wtxidrelay era).
	ProtocolVersion = 70016
	// MaxUserAgentLen is the longest user agent accepted (Bitcoin Core's
	// MAX_SUBVERSION_LENGTH, btcd's MaxUserAgentLen).
	MaxUserAgentLen = 256
)

// Version is the version message that opens a connection.
//
// Old peers send shorter forms: AddrFrom, Nonce, UserAgent and StartHeight
// are read only when bytes remain, and Relay (BIP37) defaults to true when
// absent, as Bitcoin Core reads it. Encoding always writes every field.
type Version struct {
	Protocol    int32
	Services    ServiceFlag
	Timestamp   int64 // Unix seconds
	AddrRecv    NetAddr
	AddrFrom    NetAddr
	Nonce       uint64
	UserAgent   string
	StartHeight int32
	Relay       bool
}

// Command returns "version".
func (*Version) Command() string { return CmdVersion }

// Time returns Timestamp as a time.Time.
func (m *Version) Time() time.Time { return time.Unix(m.Timestamp, 0) }

// AppendPayload appends the encoded body.
func (m *Version) AppendPayload(dst []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(m.Protocol))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(m.Services))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(m.Timestamp))
	dst = AppendNetAddr(dst, m.AddrRecv)
	dst = AppendNetAddr(dst, m.AddrFrom)
	dst = binary.LittleEndian.AppendUint64(dst, m.Nonce)
	dst = AppendVarString(dst, m.UserAgent)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(m.StartHeight))
	relay := byte(0)
	if m.Relay {
		relay = 1
	}
	return append(dst, relay)
}

// Decode parses payload into m. The user agent is copied out of the payload
// (checked against MaxUserAgentLen first).
func (m *Version) Decode(payload []byte) error {
	*m = Version{Relay: true}
	r := reader{cmd: CmdVersion, b: payload}
	m.Protocol = int32(r.uint32())
	m.Services = ServiceFlag(r.uint64())
	m.Timestamp = int64(r.uint64())
	m.AddrRecv = r.netAddr()
	if r.err == nil && r.remaining() > 0 {
		m.AddrFrom = r.netAddr()
		m.Nonce = r.uint64()
	}
	if r.err == nil && r.remaining() > 0 {
		if ua := r.varBytes(MaxUserAgentLen); r.err == nil {
			m.UserAgent = string(ua)
		}
	}
	if r.err == nil && r.remaining() > 0 {
		m.StartHeight = int32(r.uint32())
	}
	if r.err == nil && r.remaining() > 0 {
		m.Relay = r.bool()
	}
	return r.end()
}
