package benchmarks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"unsafe"

	"github.com/btcsuite/btcd/v2transport"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/btcpipe/btcpipe/bip324"
	"github.com/btcpipe/btcpipe/stages"
	"github.com/btcpipe/btcpipe/wire"
)

// v2CorpusNames are the corpora BenchmarkDecodeV2 runs over, re-encoded as
// BIP324 packets.
var v2CorpusNames = []string{"ping", "addr", "tx10k", "block", "mix"}

// v2Keys are the fixed length and contents keys of the benchmark's one
// direction: the stream is sealed once with them, and every pass opens it
// from packet 0 again.
var v2Keys = struct{ l, p [32]byte }{l: [32]byte{1, 2, 3}, p: [32]byte{4, 5, 6}}

// v2Corpus is a corpus re-encoded as BIP324 packets: stream holds the
// packets (corpus.stream), and offs where each starts.
type v2Corpus struct {
	*corpus
	offs []int
}

var v2Corpora sync.Map // *corpus → func() (*v2Corpus, error)

// getV2Corpus seals every message of c into a packet, in order, with
// v2Keys.
func getV2Corpus(c *corpus) (*v2Corpus, error) {
	f, _ := v2Corpora.LoadOrStore(c, sync.OnceValues(func() (*v2Corpus, error) {
		s := bip324.NewSender(v2Keys.l, v2Keys.p)
		v := &v2Corpus{corpus: &corpus{name: c.name, magic: c.magic, payloads: c.payloads}}
		for off := 0; off < len(c.stream); {
			f, n, err := wire.ScanFrame(c.stream[off:], c.magic)
			if err != nil {
				return nil, err
			}
			v.offs = append(v.offs, len(v.stream))
			if v.stream, err = s.AppendMessage(v.stream, f.CommandName(), f.Payload); err != nil {
				return nil, err
			}
			v.maxFrame = max(v.maxFrame, len(v.stream)-v.offs[len(v.offs)-1])
			off += n
		}
		return v, nil
	}))
	return f.(func() (*v2Corpus, error))()
}

// restore copies the sealed stream back into the layout's slabs, which the
// previous pass decrypted in place: the copy a reader makes from the socket
// into its slab, counted in every v2 row that decrypts in place.
func (l *layout) restore(stream []byte) {
	pos := 0
	for _, c := range l.chunks {
		pos += copy(c.Slab.B[c.Off:c.End], stream[pos:])
	}
}

// v2Impl is one way of getting a v2 corpus's messages.
type v2Impl struct {
	name  string
	setup func(tb testing.TB, c *v2Corpus, l *layout) runner
}

var v2Impls = []v2Impl{
	// v2-decoder: our v2 stages on one goroutine, as impl=decoder for v1:
	// V2Framer.Push (lengths decrypted, packets cut in place) +
	// V2Verifier.Open (tag checked, decrypted in place, command known) +
	// Dispatcher.Dispatch (wire.Decoder, no-op handler) + Release.
	{"v2-decoder", func(_ testing.TB, c *v2Corpus, l *layout) runner {
		opts := readerOptions(c.corpus).Defaults()
		recv := bip324.NewReceiver(v2Keys.l, v2Keys.p)
		base := *recv
		fr := stages.NewV2Framer(recv, opts)
		v := stages.NewV2Verifier(recv, opts)
		h := &countHandler{}
		d := stages.NewDispatcher(h, opts)
		ctx := context.Background()
		var derr error
		dispatch := func(b *stages.Batch) {
			if err := v.Open(b); err != nil && derr == nil {
				derr = err
			}
			if err := d.Dispatch(ctx, b, nil); err != nil && derr == nil {
				derr = err
			}
			b.Release()
		}
		return syncRunner(func() (int, error) {
			*recv = base // packet 0 again
			l.restore(c.stream)
			h.n, derr = 0, nil
			_, err := l.replay(fr, dispatch)
			return h.n, errors.Join(err, derr)
		})
	}},
	// v2-btcd: btcd's v2transport receive path, Peer.V2ReceivePacket, until
	// the stream ends (the transport only: no message decoding). Its
	// receive ciphers are set to fresh ones before each pass.
	{"v2-btcd", func(tb testing.TB, c *v2Corpus, _ *layout) runner {
		r := bytes.NewReader(nil)
		p := v2transport.NewPeer()
		p.UseReadWriter(struct {
			*bytes.Reader
			nopWriter
		}{r, nopWriter{}})
		return syncRunner(func() (int, error) {
			if err := btcdRekey(p); err != nil {
				return 0, err
			}
			r.Reset(c.stream)
			n := 0
			for r.Len() > 0 {
				if _, err := p.V2ReceivePacket(nil); err != nil {
					return n, err
				}
				n++
			}
			return n, nil
		})
	}},
	// chacha20poly1305: x/crypto's AEAD Open, in place, over the sealed part
	// of every packet with its key and nonce: the limit (no lengths, no
	// framing, no decoding).
	{"chacha20poly1305", func(tb testing.TB, c *v2Corpus, _ *layout) runner {
		recv := bip324.NewReceiver(v2Keys.l, v2Keys.p)
		type pk struct {
			aead  int
			nonce [chacha20poly1305.NonceSize]byte
			start int
			end   int
		}
		var aeads []interface {
			Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error)
		}
		var keys []pk
		var last [32]byte
		for i, off := range c.offs {
			end := len(c.stream)
			if i+1 < len(c.offs) {
				end = c.offs[i+1]
			}
			k := recv.NextPacketKey()
			if len(aeads) == 0 || k.Key != last {
				a, err := chacha20poly1305.New(k.Key[:])
				if err != nil {
					tb.Fatal(err)
				}
				aeads, last = append(aeads, a), k.Key
			}
			keys = append(keys, pk{aead: len(aeads) - 1, nonce: k.Nonce, start: off + bip324.LengthSize, end: end})
		}
		work := bytes.Clone(c.stream)
		return syncRunner(func() (int, error) {
			copy(work, c.stream)
			for i := range keys {
				k := &keys[i]
				sealed := work[k.start:k.end]
				if _, err := aeads[k.aead].Open(sealed[:0], k.nonce[:], sealed, nil); err != nil {
					return i, fmt.Errorf("packet %d: %w", i, err)
				}
			}
			return len(keys), nil
		})
	}},
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }

// btcdRekey gives btcd's Peer fresh receive ciphers keyed with v2Keys:
// btcd sets them only in its handshake and has no other way in, so this
// writes its unexported recvL and recvP fields (test-only).
func btcdRekey(p *v2transport.Peer) error {
	l, err := v2transport.NewFSChaCha20(v2Keys.l[:])
	if err != nil {
		return err
	}
	aead, err := v2transport.NewFSChaCha20Poly1305(v2Keys.p[:])
	if err != nil {
		return err
	}
	set := func(name string, v any) {
		f := reflect.ValueOf(p).Elem().FieldByName(name)
		reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Set(reflect.ValueOf(v))
	}
	set("recvL", l)
	set("recvP", aead)
	return nil
}

// BenchmarkDecodeV2 runs every v2 implementation over the v2 corpora: the
// same messages as BenchmarkDecode's corpora of the same names, sealed as
// BIP324 packets. MB/s is of the packet stream.
func BenchmarkDecodeV2(b *testing.B) {
	for _, d := range corpusDefs {
		if !contains(v2CorpusNames, d.name) {
			continue
		}
		b.Run("corpus="+d.name, func(b *testing.B) {
			c1, err := getCorpus(d)
			if err != nil {
				b.Fatal(err)
			}
			c, err := getV2Corpus(c1)
			if err != nil {
				b.Fatal(err)
			}
			l, err := getLayout(c.corpus)
			if err != nil {
				b.Fatal(err)
			}
			for _, im := range v2Impls {
				b.Run("impl="+im.name, func(b *testing.B) {
					r := im.setup(b, c, l)
					n, err := r.pass() // warm
					if err != nil || n != c.frames() {
						b.Fatalf("%s over %s: %d messages, %v; want %d", im.name, c.name, n, err, c.frames())
					}
					b.SetBytes(int64(len(c.stream)))
					b.ReportAllocs()
					passes := 0
					cpu := cpuTime()
					for b.Loop() {
						if n, err := r.pass(); err != nil || n != c.frames() {
							b.Fatalf("%s over %s: %d messages, %v", im.name, c.name, n, err)
						}
						passes++
					}
					cpu = cpuTime() - cpu
					b.ReportMetric(float64(cpu.Nanoseconds())/float64(passes), "cpu-ns/op")
					b.ReportMetric(float64(c.frames()), "msgs/op")
					b.ReportMetric(float64(c.frames()*passes)/b.Elapsed().Seconds(), "msgs/s")
				})
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestV2CorporaRoundTrip checks the v2 corpora and implementations: every
// one yields every message, and ours yields the same commands and payloads
// as the v1 corpus.
func TestV2CorporaRoundTrip(t *testing.T) {
	for _, d := range corpusDefs {
		if !contains(v2CorpusNames, d.name) {
			continue
		}
		t.Run(d.name, func(t *testing.T) {
			c1, err := getCorpus(d)
			if err != nil {
				t.Fatal(err)
			}
			c, err := getV2Corpus(c1)
			if err != nil {
				t.Fatal(err)
			}
			l, err := getLayout(c.corpus)
			if err != nil {
				t.Fatal(err)
			}
			for _, im := range v2Impls {
				r := im.setup(t, c, l)
				for pass := range 2 {
					if n, err := r.pass(); err != nil || n != c.frames() {
						t.Fatalf("%s pass %d: %d messages, %v; want %d", im.name, pass, n, err, c.frames())
					}
				}
			}
			// Ours, message by message, against the v1 corpus.
			opts := readerOptions(c.corpus).Defaults()
			recv := bip324.NewReceiver(v2Keys.l, v2Keys.p)
			fr, v := stages.NewV2Framer(recv, opts), stages.NewV2Verifier(recv, opts)
			l.restore(c.stream)
			i := 0
			_, err = l.replay(fr, func(b *stages.Batch) {
				if err := v.Open(b); err != nil {
					t.Fatal(err)
				}
				for _, f := range b.Frames {
					if !bytes.Equal(f.Payload, c1.payloads[i]) {
						t.Fatalf("message %d (%s): payload differs", i, f.CommandName())
					}
					i++
				}
				b.Release()
			})
			if err != nil || i != c1.frames() {
				t.Fatalf("%d messages, %v; want %d", i, err, c1.frames())
			}
		})
	}
}
