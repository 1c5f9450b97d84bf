package version_test

import (
	"testing"

	"github.com/btcpipe/btcpipe/internal/version"
)

func TestUserAgent(t *testing.T) {
	if got, want := version.UserAgent(), "/btcpipe:"+version.Version+"/"; got != want {
		t.Errorf("UserAgent() = %q, want %q", got, want)
	}
	if version.Version == "" {
		t.Error("Version is empty")
	}
}
