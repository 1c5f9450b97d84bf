// Package wire is btcpipe's codec for the Bitcoin peer-to-peer protocol:
// networks, frame headers, a frame scanner for a rolling receive buffer, the
// primitive encodings and the messages a crawling node speaks.
//
// It imports only the standard library. Decoding works on byte slices and
// encoding appends to a byte slice; nothing uses reflection.
//
// # Frames
//
// A frame is a 24-byte Header (magic, NUL-padded command, payload length,
// checksum) and a payload. ScanFrame cuts the next frame from the bytes
// received so far, or says that more are needed; it neither allocates nor
// copies, and refuses a bad magic, a bad command or a declared length over
// MaxPayload as soon as the header is there, before the payload arrives.
// Checksums are checked separately (Frame.Verify, Checksum), so that a
// pipeline can verify frames on other goroutines.
//
// # Limits
//
//   - MaxPayload (4,000,000 bytes): the largest frame payload.
//   - MaxAddrEntries (1,000): entries in addr and addrv2.
//   - MaxInvEntries (50,000): entries in inv, getdata and notfound.
//   - MaxUserAgentLen (256): the version user agent.
//   - MaxAddrV2Len (512): one addrv2 address.
//   - MaxRejectMessageLen (111): the strings of reject.
//
// Every count and length is checked against its limit, and against the bytes
// left in the payload, before anything is allocated for it; a hostile length
// costs nothing. CompactSize integers must be canonical (ErrNonCanonicalVarInt)
// and bytes after a complete body are an error (ErrTrailingBytes).
//
// # The table of commands
//
// One table (commands.go) lists every command the package knows, with the
// largest valid payload of each and the constructor of its message (none
// for the commands carried as Raw). New, Decoder, Header.CommandName,
// KnownCommands, Known, CommandIndex and MaxPayloadFor all read it, and so
// do the metrics labels and the pipeline's observers: adding a message is
// one entry in the table plus the file of its codec.
//
// # Encoding
//
// AppendPayload and AppendMessage never fail and check nothing (tests use
// them to send what a peer must refuse). EncodeMessage and Check refuse what
// the wire would reject: a command that is empty, over 12 bytes or not
// printable, a list or a string over its limit, a payload over
// MaxPayloadFor; the error is an *EncodeError wrapping a sentinel.
//
// # Errors
//
// Errors wrap sentinels (ErrBadMagic, ErrPayloadTooLarge, ErrChecksum,
// ErrBadCommand, ErrNonCanonicalVarInt, ErrTooManyEntries, ErrTruncated,
// ErrTrailingBytes, ErrStringTooLong, ErrBadAddress) in a *DecodeError that
// names the command and the offset, so errors.Is works on every error.
//
// # Lifetimes
//
//   - ScanFrame: Frame.Payload aliases the scanned buffer.
//   - Message.Decode: the decoded message does not alias the payload (strings
//     and addresses are copied), except Raw.Payload, which does.
//   - Decoder.Decode: the returned message belongs to the Decoder and is
//     valid until the next Decode of the same command.
//   - List fields (Addr.List, AddrV2.List, Inv.List, …) are reused by the
//     next Decode into the same value.
//
// # Addresses
//
// Addresses in addr and version are net/netip values. IPv4 travels as
// IPv4-mapped IPv6 there and is unmapped on decode. BIP155 addrv2 entries
// carry IPv4, IPv6, Tor v3 (rendered as "….onion" with its checksum), I2P
// (rendered as "….b32.i2p") and CJDNS; a NetAddrV2 holds its address as
// bytes (48 bytes an entry, no pointers), read with IP and Key. Unknown
// network ids (including BIP155's newer Yggdrasil, id 7), and the deprecated
// Tor v2, are skipped as BIP155 asks, as are the entries Bitcoin Core does
// not keep (see NetAddrV2.Valid).
package wire
