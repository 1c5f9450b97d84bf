package bip324

import (
	"bytes"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"

	"github.com/btcsuite/btcd/v2transport"
	"golang.org/x/crypto/chacha20poly1305"
)

// benchSizes are the contents sizes of the benchmarks: a ping (short id and
// an 8-byte nonce), a 10 KB transaction, a 1 MB block.
var benchSizes = []struct {
	name string
	n    int
	k    int // packets generated per pass
}{
	{"ping", 9, 4096},
	{"10KB", 10_000, 1024},
	{"1MB", 1_000_000, 24},
}

// benchStream returns k packets of n bytes of contents from a fresh
// Sender, and the Receiver that opens them.
func benchStream(n, k int) ([][]byte, Receiver) {
	keys := Keys{InitiatorL: [32]byte{1}, InitiatorP: [32]byte{2}}
	send, _ := keys.Ciphers(true)
	_, recv := keys.Ciphers(false)
	contents := bytes.Repeat([]byte{0x5a}, n)
	pkts := make([][]byte, k)
	for i := range pkts {
		pkts[i] = send.AppendPacket(nil, contents, nil, false)
	}
	return pkts, *recv
}

// BenchmarkOpen measures receiving one packet: copying it into a slab (as
// the reader does), then
//
//   - bip324: DecryptLength and an in-place Open, as the framer and
//     verifier will;
//   - chacha20poly1305: a bare in-place ChaCha20-Poly1305 Open of the same
//     bytes with one key (the limit: no length cipher, no rekeying);
//   - btcd: btcd's v2transport Peer.V2ReceivePacket reading the packet from
//     a bytes.Reader.
//
// Bytes are the packet's size on the wire.
func BenchmarkOpen(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			b.Run("bip324", func(b *testing.B) {
				pkts, r0 := benchStream(sz.n, sz.k)
				slab := make([]byte, PacketLen(uint32(sz.n)))
				r := r0
				b.SetBytes(int64(len(pkts[0])))
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if i == len(pkts) {
						i, r = 0, r0 // the Receiver is a value: rewind it
					}
					copy(slab, pkts[i])
					i++
					n, err := r.DecryptLength(slab)
					if err != nil {
						b.Fatal(err)
					}
					if _, _, err := r.Open(slab[LengthSize:PacketLen(n)], nil); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("chacha20poly1305", func(b *testing.B) {
				aead, _ := chacha20poly1305.New(make([]byte, 32))
				nonce := make([]byte, 12)
				pt := bytes.Repeat([]byte{0x5a}, HeaderSize+sz.n)
				sealed := aead.Seal(nil, nonce, pt, nil)
				slab := make([]byte, len(sealed))
				b.SetBytes(int64(LengthSize + len(sealed)))
				b.ReportAllocs()
				for b.Loop() {
					copy(slab, sealed)
					if _, err := aead.Open(slab[:0], nonce, slab, nil); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("btcd", func(b *testing.B) {
				peer, next := btcdReceiveRig(b, sz.n, sz.k)
				b.SetBytes(int64(PacketLen(uint32(sz.n))))
				b.ReportAllocs()
				left := sz.k
				for b.Loop() {
					if left == 0 {
						b.StopTimer()
						peer, left = next(), sz.k
						b.StartTimer()
					}
					left--
					if _, err := peer.V2ReceivePacket(nil); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// btcdReceiveRig returns a btcd Peer keyed by a handshake with our
// initiator and reading k of our packets of n bytes, and a function that
// makes a fresh one (btcd's cipher state cannot be rewound).
func btcdReceiveRig(b *testing.B, n, k int) (*v2transport.Peer, func() *v2transport.Peer) {
	contents := bytes.Repeat([]byte{0x5a}, n)
	var stream []byte
	next := func() *v2transport.Peer {
		x, y := net.Pipe()
		a, c := newBufConn(x), newBufConn(y)
		defer a.Close()
		defer c.Close()
		peer := v2transport.NewPeer()
		peer.UseReadWriter(c)
		errc := make(chan error, 1)
		go func() {
			if err := peer.RespondV2Handshake(0, btcdNet); err != nil {
				errc <- err
				return
			}
			errc <- peer.CompleteHandshake(false, nil, btcdNet)
		}()
		s, err := Initiate(a, &Config{Magic: magic, Garbage: []byte{}})
		if err != nil {
			b.Fatal(err)
		}
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
		stream = stream[:0]
		for range k {
			stream = s.Send.AppendPacket(stream, contents, nil, false)
		}
		peer.UseReadWriter(readWriter{bytes.NewReader(stream), io.Discard})
		return peer
	}
	return next(), next
}

// BenchmarkSend measures AppendMessage into a reused buffer.
func BenchmarkSend(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			keys := Keys{InitiatorL: [32]byte{1}, InitiatorP: [32]byte{2}}
			send, _ := keys.Ciphers(true)
			payload := make([]byte, sz.n-1)
			buf := make([]byte, 0, PacketLen(uint32(sz.n)))
			b.SetBytes(int64(PacketLen(uint32(sz.n))))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = send.AppendMessage(buf[:0], "tx", payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerify asks whether tag checks pay on several goroutines: a
// batch of packets (one reader chunk's worth) opened in order on one
// goroutine, against keys taken in order and OpenWith fanned out to
// GOMAXPROCS workers, which wait for the whole batch.
func BenchmarkVerify(b *testing.B) {
	for _, sz := range []struct {
		name  string
		n     int
		batch int
	}{{"ping", 9, 256}, {"10KB", 10_000, 32}, {"1MB", 1_000_000, 8}} {
		pkts, r0 := benchStream(sz.n, sz.batch*4)
		bytesPerBatch := int64(sz.batch * len(pkts[0]))
		slabs := make([][]byte, sz.batch)
		for i := range slabs {
			slabs[i] = make([]byte, len(pkts[0]))
		}
		b.Run(sz.name+"/sequential", func(b *testing.B) {
			r := r0
			off := 0
			b.SetBytes(bytesPerBatch)
			b.ReportAllocs()
			for b.Loop() {
				if off == len(pkts) {
					off, r = 0, r0
				}
				for i := range slabs {
					copy(slabs[i], pkts[off+i])
					n, _ := r.DecryptLength(slabs[i])
					if _, _, err := r.Open(slabs[i][LengthSize:PacketLen(n)], nil); err != nil {
						b.Fatal(err)
					}
				}
				off += sz.batch
			}
		})
		b.Run(sz.name+"/parallel", func(b *testing.B) {
			workers := runtime.GOMAXPROCS(0)
			type job struct{ lo, hi int }
			jobs := make(chan job, workers)
			keys := make([]PacketKey, sz.batch)
			var wg sync.WaitGroup
			var failed sync.Once
			var ferr error
			for range workers {
				go func() {
					for j := range jobs {
						for i := j.lo; i < j.hi; i++ {
							n := PacketLen(uint32(sz.n))
							if _, _, err := OpenWith(&keys[i], slabs[i][LengthSize:n], nil); err != nil {
								failed.Do(func() { ferr = err })
							}
						}
						wg.Done()
					}
				}()
			}
			defer close(jobs)
			r := r0
			off := 0
			b.SetBytes(bytesPerBatch)
			b.ReportAllocs()
			for b.Loop() {
				if off == len(pkts) {
					off, r = 0, r0
				}
				for i := range slabs { // the framer's and the key-taking part: sequential
					copy(slabs[i], pkts[off+i])
					r.DecryptLength(slabs[i])
					keys[i] = r.NextPacketKey()
				}
				per := (sz.batch + workers - 1) / workers
				for lo := 0; lo < sz.batch; lo += per {
					wg.Add(1)
					jobs <- job{lo, min(lo+per, sz.batch)}
				}
				wg.Wait()
				if ferr != nil {
					b.Fatal(ferr)
				}
				off += sz.batch
			}
		})
	}
}
