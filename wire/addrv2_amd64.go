//go:build amd64 && !purego

package wire

// addrV2Entries is addrV2EntriesGo in assembly (addrv2_amd64.s): the same
// loop in about half the instructions, with no value spilled to the stack
// (the Go compiler spills six per entry on this loop). The two are held to
// each other, and to the careful path, by the tests.
//
//go:noescape
func addrV2Entries(p []byte, list []NetAddrV2, suspects *uint8) (off, j int)
