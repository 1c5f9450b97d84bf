//go:build !race

package crawler

// raceEnabled is true when the race detector is on: it caps a process at
// 8,128 live goroutines, fewer than a 5,000-node simulated network and a
// crawl of 256 connections need.
const raceEnabled = false
