package pipeline

import (
	"fmt"
	"sort"
	"strings"

	"github.com/btcpipe/btcpipe/stages"
)

// Registry maps stage names to constructors, so that configuration can pick
// an implementation by name. The zero value is empty; DefaultRegistry has
// every implementation btcpipe ships.
type Registry struct {
	framers   map[string]func(stages.Options) Stage[stages.Chunk, *stages.Batch]
	verifiers map[string]func(stages.Options) Stage[*stages.Batch, *stages.Batch]
	// DefaultFramer and DefaultVerifier are used for empty names.
	DefaultFramer, DefaultVerifier string
}

// DefaultRegistry holds the framer "slab" and the verifiers "sequential" and
// "parallel" (the default framer and verifier are "slab" and "sequential").
var DefaultRegistry = func() *Registry {
	r := &Registry{DefaultFramer: "slab", DefaultVerifier: stages.VerifierSequential}
	r.RegisterFramer("slab", func(o stages.Options) Stage[stages.Chunk, *stages.Batch] {
		return stages.NewFramer(o)
	})
	r.RegisterVerifier(stages.VerifierSequential, func(o stages.Options) Stage[*stages.Batch, *stages.Batch] {
		return stages.NewSequentialVerifier(o)
	})
	r.RegisterVerifier(stages.VerifierParallel, func(o stages.Options) Stage[*stages.Batch, *stages.Batch] {
		return stages.NewParallelVerifier(o)
	})
	return r
}()

// RegisterFramer adds (or replaces) a framer.
func (r *Registry) RegisterFramer(name string, f func(stages.Options) Stage[stages.Chunk, *stages.Batch]) {
	if r.framers == nil {
		r.framers = map[string]func(stages.Options) Stage[stages.Chunk, *stages.Batch]{}
	}
	r.framers[name] = f
}

// RegisterVerifier adds (or replaces) a checksum verifier.
func (r *Registry) RegisterVerifier(name string, f func(stages.Options) Stage[*stages.Batch, *stages.Batch]) {
	if r.verifiers == nil {
		r.verifiers = map[string]func(stages.Options) Stage[*stages.Batch, *stages.Batch]{}
	}
	r.verifiers[name] = f
}

// Framer builds the framer called name.
func (r *Registry) Framer(name string, o stages.Options) (Stage[stages.Chunk, *stages.Batch], error) {
	if name == "" {
		name = r.DefaultFramer
	}
	f, ok := r.framers[name]
	if !ok {
		return nil, fmt.Errorf("pipeline: unknown framer %q (have %s)", name, strings.Join(keys(r.framers), ", "))
	}
	return f(o), nil
}

// Verifier builds the verifier called name.
func (r *Registry) Verifier(name string, o stages.Options) (Stage[*stages.Batch, *stages.Batch], error) {
	if name == "" {
		name = r.DefaultVerifier
	}
	f, ok := r.verifiers[name]
	if !ok {
		return nil, fmt.Errorf("pipeline: unknown verifier %q (have %s)", name, strings.Join(keys(r.verifiers), ", "))
	}
	return f(o), nil
}

// Framers and Verifiers list the registered names, sorted.
func (r *Registry) Framers() []string   { return keys(r.framers) }
func (r *Registry) Verifiers() []string { return keys(r.verifiers) }

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
