//go:build linux

package peer_test

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/btcpipe/btcpipe/internal/btcdtest"
	"github.com/btcpipe/btcpipe/internal/coretest"
	"github.com/btcpipe/btcpipe/peer"
	"github.com/btcpipe/btcpipe/wire"
)

// TestCoreV2: against Bitcoin Core (-v2transport=1, its default), auto
// speaks v2; Core's getpeerinfo shows our connection as v2 with our
// session id; our getaddr yields the same addresses an independent v1
// client gets; Core's -debug=net log holds no complaint about us.
func TestCoreV2(t *testing.T) {
	t.Parallel()
	c := coretest.Start(t, coretest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := c.AddPeerAddresses(ctx, btcdtest.RoutableAddrs(150, 324)); err != nil {
		t.Fatal(err)
	}

	e := startNode(t, &wire.Regtest, c.Addr, func(cfg *peer.NodeConfig) {
		cfg.Transport = peer.TransportAuto
		cfg.Session.SendAddrV2 = true
	})
	info := waitFor(t, e.handshakes, 20*time.Second, "the handshake with bitcoind")
	if info.Transport != "v2" || len(info.SessionID) != 64 {
		t.Fatalf("transport %q, session id %q; want v2 and 64 hex digits", info.Transport, info.SessionID)
	}
	got := waitFor(t, e.addrs, 20*time.Second, "bitcoind's answer to getaddr")

	peers, err := c.Peers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range peers {
		if strings.HasPrefix(p.SubVer, "/btcpipe:") {
			found = true
			if p.Transport != "v2" || p.SessionID != info.SessionID {
				t.Errorf("Core sees transport %q session %s; ours v2 %s", p.Transport, p.SessionID, info.SessionID)
			}
		}
	}
	if !found {
		t.Fatalf("getpeerinfo lists no btcpipe peer: %+v", peers)
	}

	// An independent v1 client gets the same addresses: Core answers every
	// getaddr from one cache.
	v1, err := coretest.GetAddr(ctx, c.Addr, true)
	if err != nil {
		t.Fatal(err)
	}
	var ours []netip.AddrPort
	for _, a := range got {
		if ap, ok := a.AddrPort(); ok {
			ours = append(ours, ap)
		}
	}
	cmp := func(a, b netip.AddrPort) int { return a.Compare(b) }
	slices.SortFunc(ours, cmp)
	slices.SortFunc(v1, cmp)
	if len(ours) == 0 || !slices.Equal(ours, v1) {
		t.Errorf("over v2 we got %d addresses, a v1 client %d; want the same, and some", len(ours), len(v1))
	}
	t.Logf("session %s; %d addresses over v2, %d over v1", info.SessionID, len(ours), len(v1))
	if bad := c.Complaints(); len(bad) > 0 {
		t.Errorf("Core's log complains: %q", bad)
	}
}
