// Package version holds btcpipe's own version: the program's, not the
// protocol's (that is wire.ProtocolVersion).
package version

// Version is btcpipe's version. A release build may set it with
// -ldflags "-X github.com/btcpipe/btcpipe/internal/version.Version=…".
var Version = "0.1.0"

// UserAgent returns the user agent btcpipe sends by default (BIP14):
// "/btcpipe:VERSION/".
func UserAgent() string { return "/btcpipe:" + Version + "/" }
