package pipeline

import (
	"context"
	"errors"
	"io"
	mathrand "math/rand/v2"
	"time"

	"github.com/btcpipe/btcpipe/bip324"
	"github.com/btcpipe/btcpipe/stages"
)

// Names of the BIP324 (v2) implementations and transport.
const (
	FramerV2    = "v2"
	VerifierV2  = "v2"
	WriterV2    = "v2"
	TransportV2 = "v2"
)

// ErrNoV2Session: a v2 stage was built without the v2 transport's handshake
// (Env.Link.State is not a *bip324.Session).
var ErrNoV2Session = errors.New("v2 stage needs the v2 transport's handshake")

type handshakeTimeoutKey struct{}

// WithHandshakeTimeout returns ctx carrying d, the longest a transport's
// handshake may take (0: no bound but ctx's deadline). The v2 handshake sets
// it, with ctx's deadline, as the connection's deadline while it runs.
func WithHandshakeTimeout(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, handshakeTimeoutKey{}, d)
}

// HandshakeTimeout returns what WithHandshakeTimeout put in ctx, or 0.
func HandshakeTimeout(ctx context.Context) time.Duration {
	d, _ := ctx.Value(handshakeTimeoutKey{}).(time.Duration)
	return d
}

type readDeadliner interface{ SetReadDeadline(time.Time) error }
type writeDeadliner interface{ SetWriteDeadline(time.Time) error }

// MaxHandshakeDecoyLen bounds the contents of the decoy packet V2Handshake
// sends before its version packet.
const MaxHandshakeDecoyLen = 64

// V2Handshake is the v2 transport's Handshake: BIP324's key exchange as
// initiator (bip324.Initiate) with the network magic of env.Options.Magic.
// The connection's read and write deadlines (when env.R and env.W support
// them) are set to the earlier of ctx's deadline and HandshakeTimeout(ctx)
// from now while it runs, and cleared after. Its Link carries the
// *bip324.Session (State), the bytes read past the peer's version packet
// (Leftover) and the session id in hex.
func V2Handshake(ctx context.Context, rw io.ReadWriter, env Env) (Link, error) {
	var deadline time.Time
	if d := HandshakeTimeout(ctx); d > 0 {
		deadline = time.Now().Add(d)
	}
	if dl, ok := ctx.Deadline(); ok && (deadline.IsZero() || dl.Before(deadline)) {
		deadline = dl
	}
	rd, _ := env.R.(readDeadliner)
	wd, _ := env.W.(writeDeadliner)
	if !deadline.IsZero() {
		if rd != nil {
			_ = rd.SetReadDeadline(deadline)
		}
		if wd != nil {
			_ = wd.SetWriteDeadline(deadline)
		}
	}
	// One decoy packet of a random length before our version packet, as
	// BIP324 allows an initiator (it carries the garbage as associated data
	// then): the peer sees a decoy on every v2 connection, which also keeps
	// that path of ours tested against btcd and Bitcoin Core.
	s, err := bip324.Initiate(rw, &bip324.Config{Magic: env.Options.Magic, Decoys: []int{mathrand.IntN(MaxHandshakeDecoyLen + 1)}})
	if !deadline.IsZero() {
		if rd != nil {
			_ = rd.SetReadDeadline(time.Time{})
		}
		if wd != nil {
			_ = wd.SetWriteDeadline(time.Time{})
		}
	}
	if err != nil {
		return Link{}, err
	}
	return Link{State: s, Leftover: s.Leftover, SessionID: s.ID.String()}, nil
}

// v2Session returns the handshake's session a v2 stage is built with.
func v2Session(e Env) (*bip324.Session, error) {
	s, ok := e.Link.State.(*bip324.Session)
	if !ok || s == nil {
		return nil, ErrNoV2Session
	}
	return s, nil
}

// registerV2 adds the v2 stages and transport to s.
func registerV2(s *Stages) {
	s.Framers.MustRegister(FramerV2, Impl[Framer]{
		Wire: WireV2, Doc: "cuts BIP324 packets by their decrypted lengths, in place in the reader's slabs",
		New: func(e Env) (Framer, error) {
			sess, err := v2Session(e)
			if err != nil {
				return nil, err
			}
			return stages.NewV2Framer(sess.Recv, e.Options), nil
		},
	})
	s.Verifiers.MustRegister(VerifierV2, Impl[Verifier]{
		Wire: WireV2, Doc: "checks each packet's Poly1305 tag and decrypts it in place, on one goroutine; drops decoys",
		New: func(e Env) (Verifier, error) {
			sess, err := v2Session(e)
			if err != nil {
				return nil, err
			}
			return stages.NewV2Verifier(sess.Recv, e.Options), nil
		},
	})
	s.Writers.MustRegister(WriterV2, Impl[Writer]{
		Wire: WireV2, Doc: "encrypts messages into BIP324 packets, coalescing those queued together into one write",
		New: func(e Env) (Writer, error) {
			sess, err := v2Session(e)
			if err != nil {
				return nil, err
			}
			return stages.NewV2Writer(e.W, sess.Send, e.Options), nil
		},
	})
	s.Transports.MustRegister(TransportV2, Transport{
		Wire: WireV2, Framer: FramerV2, Verifier: VerifierV2, Writer: WriterV2, Handshake: V2Handshake,
		Doc: "BIP324: ElligatorSwift key exchange, ChaCha20-Poly1305 packets, decoys",
	})
}

// ForTransport returns the observers with each that counts per transport
// (stages.TransportObserver) replaced by its observer for transport name.
func (os Observers) ForTransport(name string) stages.Observer {
	out := make(Observers, len(os))
	for i, o := range os {
		if t, ok := o.(stages.TransportObserver); ok {
			o = t.ForTransport(name)
		}
		out[i] = o
	}
	return out
}

// Decoy forwards to the observers that count decoys (stages.DecoyObserver).
func (os Observers) Decoy(contents int) {
	for _, o := range os {
		if d, ok := o.(stages.DecoyObserver); ok {
			d.Decoy(contents)
		}
	}
}
