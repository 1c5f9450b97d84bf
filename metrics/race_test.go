//go:build race

package metrics_test

// raceEnabled is true when the race detector is on; allocation counts are
// not meaningful then.
const raceEnabled = true
