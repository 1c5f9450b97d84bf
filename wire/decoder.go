package wire

// New returns a new, empty message for cmd: the matching type for the
// commands this package decodes (see the table of commands), else a *Raw
// carrying cmd.
func New(cmd string) Message {
	if i, ok := lookup(cmd); ok && commands[i].New != nil {
		return commands[i].New()
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
	msgs [numCommands]Message // by table index, made on first use
	raw  Raw
}

// Decode decodes payload as a message of command cmd. See the type's
// documentation for the lifetime of the result.
func (d *Decoder) Decode(cmd string, payload []byte) (Message, error) {
	var m Message
	if i, ok := lookup(cmd); ok && commands[i].New != nil {
		m = d.msgs[i]
		if m == nil {
			m = commands[i].New()
			d.msgs[i] = m
		}
	} else {
		d.raw.Cmd = cmd
		m = &d.raw
	}
	if err := m.Decode(payload); err != nil {
		return nil, err
	}
	return m, nil
}
