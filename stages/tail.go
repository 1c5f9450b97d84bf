package stages

// tail is a framer's unconsumed bytes, the start of an incomplete frame (or
// BIP324 packet): slab.B[off:end], holding one reference to slab. Both the
// v1 and the v2 framer keep one; the frame format decides only where a
// frame ends.
type tail struct {
	slab     *Slab
	off, end int
}

func (t *tail) len() int { return t.end - t.off }

func (t *tail) bytes() []byte {
	if t.slab == nil {
		return nil
	}
	return t.slab.B[t.off:t.end]
}

// reset drops the bytes and the slab reference.
func (t *tail) reset() {
	if t.slab != nil {
		t.slab.Release()
	}
	t.slab, t.off, t.end = nil, 0, 0
}

// extend takes over c when it starts the tail or continues it in memory
// (consecutive reads of one slab are contiguous: nothing is copied) and
// reports true; otherwise it leaves c to the caller, which must assemble.
func (t *tail) extend(c Chunk) bool {
	switch {
	case t.slab == nil:
		t.slab, t.off, t.end = c.Slab, c.Off, c.End
	case t.slab == c.Slab && t.end == c.Off:
		t.end = c.End // the tail's reference covers c
		c.Slab.Release()
	default:
		return false
	}
	return true
}

// keep copies the tail and all of c into a small slab of their own, when
// together they are still too short to say how long the frame is. It
// takes over c.
func (t *tail) keep(c Chunk, budget *Budget) {
	pending, in := t.bytes(), c.Bytes()
	a := chargedSlab(len(pending)+len(in), budget)
	n := copy(a.B, pending)
	n += copy(a.B[n:], in)
	t.reset()
	c.Slab.Release()
	t.slab, t.off, t.end = a, 0, n
}

// fill completes a frame of size bytes, which the tail starts, in a slab
// the tail alone holds: the tail's own when no one else holds it and it is
// large enough (the frame is completed in place), else an assembly slab of
// exactly the frame's size (the one copy of a frame that straddles two
// slabs). It takes as much of c as the frame needs and returns the rest of
// c (Slab nil when none is left: c is released) and whether the frame is
// now whole, at the start of the tail.
func (t *tail) fill(c Chunk, size int, budget *Budget) (Chunk, bool) {
	pending := t.bytes()
	var a *Slab
	if s := t.slab; s.refs.Load() == 1 && t.off == 0 && len(s.B) >= size {
		a = s
	} else {
		a = chargedSlab(size, budget)
		copy(a.B, pending)
		t.reset()
	}
	have := len(pending)
	take := copy(a.B[have:size], c.Bytes())
	t.slab, t.off, t.end = a, 0, have+take
	c.Off += take
	if c.Off == c.End {
		c.Slab.Release()
		c = Chunk{}
	}
	return c, have+take == size
}
