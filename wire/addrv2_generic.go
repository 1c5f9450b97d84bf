//go:build !amd64 || purego

package wire

// addrV2Entries is addrV2EntriesGo where there is no assembly for it.
func addrV2Entries(p []byte, list []NetAddrV2, suspects *uint8) (off, j int) {
	return addrV2EntriesGo(p, list, suspects)
}
