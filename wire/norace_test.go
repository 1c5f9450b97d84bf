//go:build !race

package wire_test

// raceEnabled is true when the race detector is on; allocation counts are
// not meaningful then (instrumentation can allocate).
const raceEnabled = false
