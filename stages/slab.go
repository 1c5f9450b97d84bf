package stages

import (
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/btcpipe/btcpipe/wire"
)

// Slab sizes.
const (
	// MinSlab is the smallest slab the reader reads into.
	MinSlab = 64 << 10
	// MaxSlab caps a slab: the reader never holds more than this in one
	// buffer however large a frame a peer announces (the largest frame,
	// wire.HeaderSize+wire.MaxPayload, fits).
	MaxSlab = 8 << 20
)

// Slab is a reference-counted receive buffer. Its bytes go back to a pool
// when the last reference is released; after that they must not be touched.
type Slab struct {
	B    []byte
	refs atomic.Int32
	// budget, if set, is given back len(B) bytes when the last reference
	// goes (see Budget).
	budget *Budget
}

// slab size classes: powers of two from MinSlab to MaxSlab.
const slabClasses = 8 // MinSlab<<7 == MaxSlab

var slabPools [slabClasses]sync.Pool

func slabClass(size int) int {
	if size <= MinSlab {
		return 0
	}
	return bits.Len(uint((size - 1) / MinSlab))
}

// SlabSize returns the capacity NewSlab gives a slab of size bytes.
func SlabSize(size int) int {
	if c := slabClass(size); c < len(slabPools) {
		return MinSlab << c
	}
	return size
}

// NewSlabIn returns NewSlab(size) whose room, SlabSize(size) bytes, the
// caller has taken from budget (Acquire or Charge): releasing the slab's
// last reference gives it back.
func NewSlabIn(size int, budget *Budget) *Slab {
	s := NewSlab(size)
	s.budget = budget
	return s
}

// chargedSlab is a slab the framer needs to complete a frame: its room is
// charged to budget without waiting (see Budget.Charge).
func chargedSlab(size int, budget *Budget) *Slab {
	budget.Charge(int64(SlabSize(size)))
	return NewSlabIn(size, budget)
}

// NewSlab returns a slab of capacity at least size (rounded up to a power of
// two, MinSlab at least) holding one reference. Sizes above MaxSlab are not
// pooled.
func NewSlab(size int) *Slab {
	c := slabClass(size)
	if c < len(slabPools) {
		if s, ok := slabPools[c].Get().(*Slab); ok {
			s.refs.Store(1)
			return s
		}
		s := &Slab{B: make([]byte, MinSlab<<c)}
		s.refs.Store(1)
		return s
	}
	s := &Slab{B: make([]byte, size)}
	s.refs.Store(1)
	return s
}

// Retain adds a reference.
func (s *Slab) Retain() { s.refs.Add(1) }

// Release drops a reference; the last one returns the slab to its pool.
func (s *Slab) Release() {
	switch n := s.refs.Add(-1); {
	case n == 0:
		if s.budget != nil {
			s.budget.Release(int64(len(s.B)))
			s.budget = nil
		}
		if c := slabClass(len(s.B)); c < len(slabPools) && len(s.B) == MinSlab<<c {
			slabPools[c].Put(s)
		}
	case n < 0:
		panic("stages: slab released too often")
	}
}

// Chunk is one read: the window Slab.B[Off:End]. It holds one reference to
// Slab, passed on to whoever receives the chunk.
type Chunk struct {
	Slab     *Slab
	Off, End int
}

// Bytes returns the chunk's bytes.
func (c Chunk) Bytes() []byte { return c.Slab.B[c.Off:c.End] }

// Batch is a run of frames in arrival order, with references to the slabs
// their payloads alias. See the package documentation for its lifetime.
type Batch struct {
	Frames []wire.Frame
	slabs  []*Slab
}

var batchPool = sync.Pool{New: func() any { return new(Batch) }}

// NewBatch returns an empty batch from the pool.
func NewBatch() *Batch { return batchPool.Get().(*Batch) }

// hold records that the batch's frames alias s, taking a reference.
func (b *Batch) hold(s *Slab) {
	for _, h := range b.slabs {
		if h == s {
			return
		}
	}
	s.Retain()
	b.slabs = append(b.slabs, s)
}

// Add appends a frame whose payload aliases s (nil when it aliases memory
// the caller keeps alive).
func (b *Batch) Add(f wire.Frame, s *Slab) {
	if s != nil {
		b.hold(s)
	}
	b.Frames = append(b.Frames, f)
}

// grow appends a zero frame and returns it, for the framer to scan into.
func (b *Batch) grow() *wire.Frame {
	b.Frames = append(b.Frames, wire.Frame{})
	return &b.Frames[len(b.Frames)-1]
}

// Release drops the batch's slab references and returns it to the pool. The
// frames' payloads must not be used afterwards.
func (b *Batch) Release() {
	for i, s := range b.slabs {
		s.Release()
		b.slabs[i] = nil
	}
	clear(b.Frames)
	b.Frames, b.slabs = b.Frames[:0], b.slabs[:0]
	batchPool.Put(b)
}
