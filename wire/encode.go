package wire

import "fmt"

// EncodeError says why a message cannot be encoded: what it holds would be
// rejected by the wire (a command over CommandSize bytes, a list or a
// string over its limit, a payload over the command's MaxPayloadFor). It
// wraps one of the sentinel errors (ErrBadCommand, ErrTooManyEntries,
// ErrStringTooLong, ErrPayloadTooLarge).
type EncodeError struct {
	Command string
	Err     error
}

func (e *EncodeError) Error() string {
	return fmt.Sprintf("wire: cannot encode %q: %v", e.Command, e.Err)
}

func (e *EncodeError) Unwrap() error { return e.Err }

// checker is implemented by the messages that have limits of their own.
type checker interface{ check() error }

// checkCommand reports whether cmd can be a frame's command: 1 to
// CommandSize printable ASCII bytes.
func checkCommand(cmd string) error {
	if len(cmd) == 0 || len(cmd) > CommandSize {
		return fmt.Errorf("%w: %d bytes, want 1 to %d", ErrBadCommand, len(cmd), CommandSize)
	}
	for i := 0; i < len(cmd); i++ {
		if cmd[i] < 0x20 || cmd[i] > 0x7e {
			return fmt.Errorf("%w: byte %#02x at offset %d is not printable ASCII", ErrBadCommand, cmd[i], i)
		}
	}
	return nil
}

// Check reports whether m can be sent: its command is a valid one and what
// it holds is within the limits a peer enforces (list lengths, string
// lengths). The error is an *EncodeError. It does not allocate when m is
// valid.
func Check(m Message) error {
	cmd := m.Command()
	if err := checkCommand(cmd); err != nil {
		return &EncodeError{Command: cmd, Err: err}
	}
	if c, ok := m.(checker); ok {
		if err := c.check(); err != nil {
			return &EncodeError{Command: cmd, Err: err}
		}
	}
	return nil
}

// EncodeMessage appends m to dst as a complete frame of network magic, like
// AppendMessage, but first refuses (with an *EncodeError, dst unchanged)
// what the wire would reject: see Check; and a payload longer than
// MaxPayloadFor(m.Command()). With enough capacity in dst it does not
// allocate.
func EncodeMessage(dst []byte, magic Magic, m Message) ([]byte, error) {
	if err := Check(m); err != nil {
		return dst, err
	}
	start := len(dst)
	dst = AppendMessage(dst, magic, m)
	if n, limit := len(dst)-start-HeaderSize, MaxPayloadFor(m.Command()); n > int(limit) {
		return dst[:start], &EncodeError{Command: m.Command(), Err: fmt.Errorf("%w: %d bytes, at most %d", ErrPayloadTooLarge, n, limit)}
	}
	return dst, nil
}

func checkCount(n, limit int) error {
	if n > limit {
		return fmt.Errorf("%w: %d, at most %d", ErrTooManyEntries, n, limit)
	}
	return nil
}

func checkString(what, s string, limit int) error {
	if len(s) > limit {
		return fmt.Errorf("%w: %s of %d bytes, at most %d", ErrStringTooLong, what, len(s), limit)
	}
	return nil
}

func (m *Addr) check() error    { return checkCount(len(m.List), MaxAddrEntries) }
func (m *AddrV2) check() error  { return checkCount(len(m.List), MaxAddrEntries) }
func (m *InvList) check() error { return checkCount(len(m.List), MaxInvEntries) }
func (m *Version) check() error { return checkString("user agent", m.UserAgent, MaxUserAgentLen) }

func (m *Reject) check() error {
	if err := checkString("rejected command", m.Message, MaxRejectMessageLen); err != nil {
		return err
	}
	return checkString("reason", m.Reason, MaxRejectMessageLen)
}

func (m *Raw) check() error {
	if len(m.Payload) > MaxPayload {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrPayloadTooLarge, len(m.Payload), MaxPayload)
	}
	return nil
}
