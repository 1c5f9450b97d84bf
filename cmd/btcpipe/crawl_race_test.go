//go:build race

package main

// raceEnabled: the race detector caps a process at 8,128 goroutines, fewer
// than a 5,000-node simulated network needs.
const raceEnabled = true
