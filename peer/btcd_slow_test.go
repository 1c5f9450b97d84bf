//go:build slow

package peer_test

import (
	"testing"
	"time"

	"github.com/btcpipe/btcpipe/internal/btcdtest"
	"github.com/btcpipe/btcpipe/peer"
	"github.com/btcpipe/btcpipe/wire"
)

// TestBtcdPingsAnswered waits for btcd's own ping (it pings every two
// minutes) and checks our pong carries its nonce.
//
// It takes two minutes, so it is built only with -tags slow
// (go test -tags slow -run TestBtcdPingsAnswered ./peer/); in make test,
// internal/coretest's TestCorePing checks the same against Bitcoin Core,
// which pings right after verack.
func TestBtcdPingsAnswered(t *testing.T) {
	t.Parallel()
	b := btcdtest.Start(t, btcdtest.Options{Network: "regtest"})
	e := startNode(t, &wire.Regtest, b.Addr, func(c *peer.NodeConfig) { c.Session.PingInterval = time.Minute })
	waitFor(t, e.handshakes, 10*time.Second, "the handshake")
	deadline := time.Now().Add(150 * time.Second)
	for time.Now().Before(deadline) {
		e.traffic.mu.Lock()
		ok := answered(e.traffic.pingsIn, e.traffic.pongsOut)
		e.traffic.mu.Unlock()
		if ok {
			checkBtcdLog(t, b)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("btcd's ping was not answered with its nonce within 150s (pings in %v, pongs out %v)", e.traffic.pingsIn, e.traffic.pongsOut)
}
