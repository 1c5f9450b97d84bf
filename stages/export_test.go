package stages

// Test hooks: the reference counts and slabs the tests check to prove that
// every slab reference taken is returned.

// Refs returns the slab's reference count.
func (s *Slab) Refs() int32 { return s.refs.Load() }

// Slabs returns the slabs the batch holds a reference to.
func (b *Batch) Slabs() []*Slab { return b.slabs }

// PendingSlab returns the slab holding the framer's pending bytes, or nil.
func (f *Framer) PendingSlab() *Slab { return f.pending.slab }
