package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/v2transport"

	"github.com/btcpipe/btcpipe/bip324"
	"github.com/btcpipe/btcpipe/pipeline"
	"github.com/btcpipe/btcpipe/stages"
	"github.com/btcpipe/btcpipe/wire"
)

// v2Msg is one message of the differential tests.
type v2Msg struct {
	cmd     string
	payload []byte
}

// genV2Msgs returns n random messages: pings (short ids, decoded), tx and
// block (short ids, raw), and long commands unknown to the wire package;
// sizes mostly small, some over a slab so that packets straddle.
func genV2Msgs(rng *mrand.Rand, n int) []v2Msg {
	letters := "abcdefghijklmnopqrstuvwxyz"
	out := make([]v2Msg, n)
	for i := range out {
		var m v2Msg
		switch r := rng.IntN(100); {
		case r < 20:
			m.cmd, m.payload = wire.CmdPing, make([]byte, 8)
		case r < 45:
			m.cmd = wire.CmdTx
		case r < 50:
			m.cmd = wire.CmdBlock
		default:
			for {
				name := make([]byte, 1+rng.IntN(12))
				for j := range name {
					name[j] = letters[rng.IntN(len(letters))]
				}
				if !wire.Known(string(name)) && bip324.TypeLen(string(name)) == bip324.LongTypeSize {
					m.cmd = string(name)
					break
				}
			}
		}
		if m.payload == nil {
			switch r := rng.IntN(100); {
			case r < 70:
				m.payload = make([]byte, rng.IntN(300))
			case r < 98:
				m.payload = make([]byte, rng.IntN(30_000))
			default:
				m.payload = make([]byte, 100_000+rng.IntN(400_000))
			}
		}
		for j := range m.payload {
			m.payload[j] = byte(rng.Uint32())
		}
		out[i] = m
	}
	return out
}

func (m v2Msg) message() wire.Message {
	if m.cmd == wire.CmdPing {
		var p wire.Ping
		if err := p.Decode(m.payload); err != nil {
			panic(err)
		}
		return &p
	}
	return &wire.Raw{Cmd: m.cmd, Payload: m.payload}
}

// collector sends its messages from Start and records what it handles;
// once it has want messages it calls done.
type collector struct {
	send []v2Msg
	want int
	done func()

	mu  sync.Mutex
	got []v2Msg
}

func (c *collector) Start(ctx context.Context, send stages.Sender) error {
	for _, m := range c.send {
		if err := send(ctx, m.message()); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return ctx.Err()
}

func (c *collector) Handle(ctx context.Context, m wire.Message, _ stages.Sender) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, v2Msg{m.Command(), m.AppendPayload(nil)})
	if len(c.got) == c.want {
		c.done()
	}
	return nil
}

// loopback returns both ends of a TCP connection on 127.0.0.1, closed
// when the test ends.
func loopback(t testing.TB) (ours, theirs net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			close(acc)
			return
		}
		acc <- c
	}()
	ours, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	theirs, ok := <-acc
	if !ok {
		ours.Close()
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { ours.Close(); theirs.Close() })
	return ours, theirs
}

// untilBoth waits, on a goroutine, for btcd's two results and (when both
// are nil) for our side to have received everything, then cancels the
// pipeline; wait returns once it has, and the results are in *errs.
func untilBoth(ctx context.Context, cancel func(), btcdErr <-chan error, gotAll <-chan struct{}) (errs *[]error, wait func()) {
	errs = new([]error)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer cancel()
		*errs = append(*errs, <-btcdErr, <-btcdErr)
		if (*errs)[0] == nil && (*errs)[1] == nil {
			select {
			case <-gotAll:
			case <-ctx.Done():
			}
		}
	}()
	return errs, func() { <-done }
}

// btcdSessionID reads the session id btcd's Peer keeps unexported.
func btcdSessionID(t *testing.T, p *v2transport.Peer) string {
	t.Helper()
	return fmt.Sprintf("%x", reflect.ValueOf(p).Elem().FieldByName("sessionID").Bytes())
}

// TestV2PipelineBtcdResponder runs our pipeline with the v2 transport
// against btcd's v2transport responder over loopback TCP: thousands of
// random messages each way (btcd adding decoys, garbage and handshake
// decoys), every one compared.
func TestV2PipelineBtcdResponder(t *testing.T) {
	const n = 3000
	for _, tc := range []struct {
		name        string
		btcdGarbage int
		btcdDecoys  []int
		decoyEvery  int // btcd sends a decoy before one message in decoyEvery (0: none)
	}{
		{"plain", 0, nil, 0},
		{"garbage and decoys", 4095, []int{0, 3, 1000}, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := mrand.New(mrand.NewPCG(n, uint64(tc.btcdGarbage)))
			toUs, toBtcd := genV2Msgs(rng, n), genV2Msgs(rng, n)
			ours, theirs := loopback(t)
			peer := v2transport.NewPeer()
			peer.UseReadWriter(theirs)

			btcdErr := make(chan error, 2)
			go func() { // btcd: handshake, then sends toUs and receives toBtcd
				if err := peer.RespondV2Handshake(tc.btcdGarbage, v2transport.BitcoinNet(magic)); err != nil {
					btcdErr <- err
					btcdErr <- err
					return
				}
				if err := peer.CompleteHandshake(false, tc.btcdDecoys, v2transport.BitcoinNet(magic)); err != nil {
					btcdErr <- err
					btcdErr <- err
					return
				}
				go func() {
					drng := mrand.New(mrand.NewPCG(1, 2))
					for _, m := range toUs {
						if tc.decoyEvery > 0 && drng.IntN(tc.decoyEvery) == 0 {
							if _, _, err := peer.V2EncPacket(make([]byte, drng.IntN(2000)), nil, true); err != nil {
								btcdErr <- err
								return
							}
						}
						contents, err := bip324.AppendContents(nil, m.cmd, m.payload)
						if err != nil {
							btcdErr <- err
							return
						}
						if _, _, err := peer.V2EncPacket(contents, nil, false); err != nil {
							btcdErr <- err
							return
						}
					}
					btcdErr <- nil
				}()
				for i, m := range toBtcd {
					got, err := peer.V2ReceivePacket(nil)
					if err != nil {
						btcdErr <- fmt.Errorf("btcd receiving message %d: %w", i, err)
						return
					}
					want, _ := bip324.AppendContents(nil, m.cmd, m.payload)
					if !bytes.Equal(got, want) {
						btcdErr <- fmt.Errorf("btcd received message %d: %d bytes, want %s of %d", i, len(got), m.cmd, len(m.payload))
						return
					}
				}
				btcdErr <- nil
			}()

			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			gotAll := make(chan struct{})
			h := &collector{send: toBtcd, want: n, done: func() { close(gotAll) }}
			p, err := pipeline.New(ours, ours, ours, h, pipeline.Config{
				Transport: pipeline.TransportV2,
				Options:   stages.Options{Peer: "btcd-v2", Magic: magic},
			})
			if err != nil {
				t.Fatal(err)
			}
			btcdErrs, wait := untilBoth(ctx, cancel, btcdErr, gotAll)
			runErr := p.Run(ctx)
			wait()
			if !errors.Is(runErr, context.Canceled) {
				t.Fatalf("Run: %v, want context.Canceled once every message arrived", runErr)
			}
			for _, err := range *btcdErrs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if len(h.got) != n {
				t.Fatalf("got %d messages, want %d", len(h.got), n)
			}
			for i, m := range toUs {
				if g := h.got[i]; g.cmd != m.cmd || !bytes.Equal(g.payload, m.payload) {
					t.Fatalf("message %d: got %s of %d bytes, want %s of %d", i, g.cmd, len(g.payload), m.cmd, len(m.payload))
				}
			}
			name, link := p.Transport()
			if name != pipeline.TransportV2 || link.SessionID != btcdSessionID(t, peer) {
				t.Errorf("transport %q session %s, want v2 and btcd's %s", name, link.SessionID, btcdSessionID(t, peer))
			}
		})
	}
}

// TestV2PipelineBtcdInitiator: btcd's initiator against a responder of ours
// (bip324.Respond) whose packets go through our v2 stages as a Link, the
// other role of the differential test.
func TestV2PipelineBtcdInitiator(t *testing.T) {
	const n = 2000
	rng := mrand.New(mrand.NewPCG(7, 8))
	toUs, toBtcd := genV2Msgs(rng, n), genV2Msgs(rng, n)
	ours, theirs := loopback(t)
	peer := v2transport.NewPeer()
	peer.UseReadWriter(theirs)
	btcdErr := make(chan error, 2)
	go func() {
		if err := peer.InitiateV2Handshake(100); err != nil {
			btcdErr <- err
			btcdErr <- err
			return
		}
		if err := peer.CompleteHandshake(true, []int{5}, v2transport.BitcoinNet(magic)); err != nil {
			btcdErr <- err
			btcdErr <- err
			return
		}
		go func() {
			for _, m := range toUs {
				contents, _ := bip324.AppendContents(nil, m.cmd, m.payload)
				if _, _, err := peer.V2EncPacket(contents, nil, false); err != nil {
					btcdErr <- err
					return
				}
			}
			btcdErr <- nil
		}()
		for i, m := range toBtcd {
			got, err := peer.V2ReceivePacket(nil)
			want, _ := bip324.AppendContents(nil, m.cmd, m.payload)
			if err != nil || !bytes.Equal(got, want) {
				btcdErr <- fmt.Errorf("btcd message %d: %d bytes, %v", i, len(got), err)
				return
			}
		}
		btcdErr <- nil
	}()
	// A transport like v2 whose handshake responds: the stages are the same.
	st := pipeline.DefaultStages.Clone()
	st.Transports.MustRegister("v2-responder", pipeline.Transport{
		Wire: pipeline.WireV2, Framer: pipeline.FramerV2, Verifier: pipeline.VerifierV2, Writer: pipeline.WriterV2,
		Handshake: func(ctx context.Context, rw io.ReadWriter, env pipeline.Env) (pipeline.Link, error) {
			s, err := bip324.Respond(rw, &bip324.Config{Magic: env.Options.Magic})
			if err != nil {
				return pipeline.Link{}, err
			}
			return pipeline.Link{State: s, Leftover: s.Leftover, SessionID: s.ID.String()}, nil
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	gotAll := make(chan struct{})
	h := &collector{send: toBtcd, want: n, done: func() { close(gotAll) }}
	p, err := pipeline.New(ours, ours, ours, h, pipeline.Config{
		Transport: "v2-responder", Stages: st, Options: stages.Options{Peer: "btcd-v2-initiator", Magic: magic},
	})
	if err != nil {
		t.Fatal(err)
	}
	errs, wait := untilBoth(ctx, cancel, btcdErr, gotAll)
	runErr := p.Run(ctx)
	wait()
	if !errors.Is(runErr, context.Canceled) {
		t.Fatalf("Run: %v", runErr)
	}
	for _, err := range *errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for i, m := range toUs {
		if g := h.got[i]; g.cmd != m.cmd || !bytes.Equal(g.payload, m.payload) {
			t.Fatalf("message %d: got %s of %d bytes, want %s of %d", i, g.cmd, len(g.payload), m.cmd, len(m.payload))
		}
	}
}

// hostileV2 runs our v2 pipeline against peer (run on the other end of a
// loopback connection) and returns Run's error; the handshake may take at
// most 2 s.
func hostileV2(t *testing.T, peer func(c net.Conn)) error {
	t.Helper()
	ours, theirs := loopback(t)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); peer(theirs) }()
	defer wg.Wait()
	defer theirs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ctx = pipeline.WithHandshakeTimeout(ctx, 2*time.Second)
	h := &collector{want: -1, done: func() {}}
	p, err := pipeline.New(ours, ours, ours, h, pipeline.Config{
		Transport: pipeline.TransportV2, Options: stages.Options{Peer: "hostile", Magic: magic},
	})
	if err != nil {
		t.Fatal(err)
	}
	return p.Run(ctx)
}

// respond runs our responder on c, for the hostile peers that misbehave
// after the handshake.
func respond(t *testing.T, c net.Conn) *bip324.Session {
	s, err := bip324.Respond(c, &bip324.Config{Magic: magic})
	if err != nil {
		t.Errorf("hostile peer's handshake: %v", err)
		return nil
	}
	return s
}

// TestV2Hostile: each misbehaving peer ends the connection cleanly, with a
// *stages.Error naming the peer, the stage and the cause, and memory
// bounded.
func TestV2Hostile(t *testing.T) {
	for _, tc := range []struct {
		name  string
		peer  func(t *testing.T, c net.Conn)
		stage string
		cause error
	}{
		{"no garbage terminator", func(t *testing.T, c net.Conn) {
			junk := make([]byte, bip324.PubKeySize+bip324.MaxGarbage+bip324.TerminatorSize+100)
			for i := range junk {
				junk[i] = byte(i*7 + 1)
			}
			c.Write(junk)
			c.Read(make([]byte, 1)) // until we close
		}, pipeline.StageHandshake, bip324.ErrNoGarbageTerminator},
		{"length beyond the limit", func(t *testing.T, c net.Conn) {
			s := respond(t, c)
			if s == nil {
				return
			}
			pkt := s.Send.AppendPacket(nil, make([]byte, bip324.MaxContents+1), nil, false)
			c.Write(pkt[:100]) // the rest is never needed
			c.Read(make([]byte, 1))
		}, stages.StageFramer, bip324.ErrPacketTooLarge},
		{"bad tag", func(t *testing.T, c net.Conn) {
			s := respond(t, c)
			if s == nil {
				return
			}
			pkt, _ := s.Send.AppendMessage(nil, wire.CmdPing, make([]byte, 8))
			pkt[len(pkt)-1] ^= 1
			c.Write(pkt)
			c.Read(make([]byte, 1))
		}, stages.StageVerifier, bip324.ErrBadTag},
		{"decoy flood", func(t *testing.T, c net.Conn) {
			s := respond(t, c)
			if s == nil {
				return
			}
			var buf []byte
			for range stages.MaxConsecutiveDecoys + 10 {
				buf = s.Send.AppendPacket(buf, []byte("decoy"), nil, true)
			}
			c.Write(buf)
			c.Read(make([]byte, 1))
		}, stages.StageVerifier, stages.ErrDecoyFlood},
		{"payload over the command's limit", func(t *testing.T, c net.Conn) {
			s := respond(t, c)
			if s == nil {
				return
			}
			pkt, _ := s.Send.AppendMessage(nil, wire.CmdPing, make([]byte, 9))
			c.Write(pkt)
			c.Read(make([]byte, 1))
		}, stages.StageVerifier, wire.ErrPayloadTooLarge},
		{"v1 bytes", func(t *testing.T, c net.Conn) {
			c.Write(wire.AppendMessage(nil, magic, &wire.Version{Protocol: 70016, UserAgent: "/v1only:0.1/"}))
			c.Read(make([]byte, 1))
		}, pipeline.StageHandshake, bip324.ErrV1Peer},
		{"stall mid-handshake", func(t *testing.T, c net.Conn) {
			c.Write(make([]byte, 30)) // half a key, then nothing
			c.Read(make([]byte, 1))
		}, pipeline.StageHandshake, os.ErrDeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			err := hostileV2(t, func(c net.Conn) { tc.peer(t, c) })
			var se *stages.Error
			if !errors.As(err, &se) || se.Peer != "hostile" || se.Stage != tc.stage || !errors.Is(err, tc.cause) {
				t.Fatalf("Run: %v, want a *stages.Error of peer hostile, stage %s, cause %v", err, tc.stage, tc.cause)
			}
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			// The hostile peer itself may allocate a 4 MB packet; we must
			// not have allocated another for it.
			if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > 12<<20 {
				t.Errorf("heap grew by %d bytes", grew)
			}
			t.Logf("%v", err)
		})
	}
}

// TestV2Registry: the v2 stages speak only v2, and need its handshake.
func TestV2Registry(t *testing.T) {
	if err := (pipeline.Config{Transport: pipeline.TransportV2}).Validate(); err != nil {
		t.Errorf("transport v2: %v", err)
	}
	for _, cfg := range []pipeline.Config{
		{Transport: pipeline.TransportV2, Framer: pipeline.FramerSlab},
		{Transport: pipeline.TransportV2, Verifier: pipeline.VerifierParallel},
		{Transport: pipeline.TransportV1, Writer: pipeline.WriterV2},
	} {
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "speaks") {
			t.Errorf("Validate(%+v) = %v, want a wire format mismatch", cfg, err)
		}
	}
	st := pipeline.DefaultStages.Clone()
	st.Transports.MustRegister("v2-no-handshake", pipeline.Transport{
		Wire: pipeline.WireV2, Framer: pipeline.FramerV2, Verifier: pipeline.VerifierV2, Writer: pipeline.WriterV2,
	})
	_, err := pipeline.New(bytes.NewReader(nil), io.Discard, nil, &collector{}, pipeline.Config{Transport: "v2-no-handshake", Stages: st})
	if !errors.Is(err, pipeline.ErrNoV2Session) {
		t.Errorf("New without a handshake: %v, want ErrNoV2Session", err)
	}
}

// TestV2HandshakeSendsADecoy: our initiator sends one decoy packet before
// its version packet on every v2 connection, which the peer authenticates
// and drops.
func TestV2HandshakeSendsADecoy(t *testing.T) {
	got := make(chan int, 1)
	err := hostileV2(t, func(c net.Conn) {
		s, err := bip324.Respond(c, &bip324.Config{Magic: magic})
		if err != nil {
			t.Errorf("responder: %v", err)
			got <- -1
			return
		}
		got <- s.PeerDecoys
		c.Close()
	})
	if n := <-got; n != 1 {
		t.Errorf("the responder saw %d decoys in our handshake, want 1", n)
	}
	if err == nil {
		t.Error("Run returned nil after the peer closed")
	}
}
