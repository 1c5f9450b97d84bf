package main

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/btcpipe/btcpipe/crawler"
	"github.com/btcpipe/btcpipe/internal/fakesam"
	"github.com/btcpipe/btcpipe/internal/fakesocks"
	"github.com/btcpipe/btcpipe/internal/simnet"
	"github.com/btcpipe/btcpipe/wire"
)

// TestReachConfigValidate checks the settings of how each network is
// reached: proxies are host:port, onlynet names networks, and a peer on a
// network with no way configured is refused with the setting to set.
func TestReachConfigValidate(t *testing.T) {
	onion := fakesocks.RandomOnion(8333).String()
	i2p := wire.NetAddrV2{Network: wire.NetI2P}.WithKey([32]byte{1, 2, 3}).String()
	tests := []struct {
		name    string
		change  func(*Config)
		wantErr string
	}{
		{name: "defaults", change: func(*Config) {}},
		{name: "tor proxy", change: func(c *Config) { c.TorProxy = "127.0.0.1:9050" }},
		{name: "tor proxy without port", change: func(c *Config) { c.TorProxy = "127.0.0.1" }, wantErr: "BTCPIPE_TOR_PROXY"},
		{name: "sam port 0", change: func(c *Config) { c.I2PSAM = "127.0.0.1:0" }, wantErr: "BTCPIPE_I2P_SAM"},
		{name: "bad proxy", change: func(c *Config) { c.Proxy = "socks5://x" }, wantErr: "BTCPIPE_PROXY"},
		{name: "onlynet", change: func(c *Config) { c.OnlyNet = "onion, i2p" }},
		{name: "bad onlynet", change: func(c *Config) { c.OnlyNet = "ipv4,tor2" }, wantErr: "BTCPIPE_ONLYNET"},
		{name: "onion peer without proxy", change: func(c *Config) { c.Peer = onion }, wantErr: "BTCPIPE_TOR_PROXY"},
		{name: "onion peer with tor proxy", change: func(c *Config) { c.Peer, c.TorProxy = onion, "127.0.0.1:9050" }},
		{name: "onion peer with proxy", change: func(c *Config) { c.Peer, c.Proxy = onion, "127.0.0.1:9050" }},
		{name: "bad onion checksum", change: func(c *Config) {
			c.Peer, c.TorProxy = strings.Replace(onion, onion[:1], map[bool]string{true: "b", false: "a"}[onion[0] == 'a'], 1), "127.0.0.1:9050"
		}, wantErr: "BTCPIPE_PEER"},
		{name: "i2p peer without sam", change: func(c *Config) { c.Peer = i2p }, wantErr: "BTCPIPE_I2P_SAM"},
		{name: "i2p peer with sam", change: func(c *Config) { c.Peer, c.I2PSAM = i2p, "127.0.0.1:7656" }},
		{name: "i2p peer with a port", change: func(c *Config) { c.Peer, c.I2PSAM = strings.TrimSuffix(i2p, ":0")+":8333", "127.0.0.1:7656" }, wantErr: "BTCPIPE_PEER"},
		{name: "cjdns peer without route", change: func(c *Config) { c.Peer = "[fc00::1]:8333" }, wantErr: "BTCPIPE_CJDNS_REACHABLE"},
		{name: "cjdns peer with route", change: func(c *Config) { c.Peer, c.CJDNSReachable = "[fc00::1]:8333", true }},
		{name: "host name peer", change: func(c *Config) { c.Peer = "seed.example:8333" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := defaultConfig()
			tt.change(&c)
			err := c.validate()
			if (err != nil) != (tt.wantErr != "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("validate() = %v, want an error naming %q", err, tt.wantErr)
			}
		})
	}
	c := defaultConfig()
	c.OnlyNet = "onion,ipv4"
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	rc := reachConfig(&c)
	if len(rc.OnlyNet) != 2 || rc.OnlyNet[0] != wire.NetTorV3 || rc.OnlyNet[1] != wire.NetIPv4 {
		t.Errorf("onlynet %v, want [torv3 ipv4]", rc.OnlyNet)
	}
}

// TestCrawlCommandReach runs `btcpipe crawl` with BTCPIPE_TOR_PROXY and
// BTCPIPE_I2P_SAM over a world on loopback: Tor and I2P nodes are reached
// through the fakes; with BTCPIPE_ONLYNET=ipv4,onion the I2P and IPv6 ones
// are recorded as excluded.
func TestCrawlCommandReach(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	s, err := simnet.New(simnet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	socks := fakesocks.Start(t, fakesocks.Options{})
	sam := fakesam.Start(t)
	w, err := s.BuildWorld(simnet.World{
		Reachable: 40,
		Share:     map[wire.NetID]float64{wire.NetTorV3: 0.5, wire.NetIPv6: 0.1, wire.NetI2P: 0.1},
		Onion:     func(t netip.AddrPort) wire.NetAddrV2 { return socks.AddOnion(t, 8333) },
		I2P:       sam.AddNode,
		IPv6:      netip.IPv6Loopback(),
		Dead:      simnet.DeadMix{Refused: 1},
		Seed:      5,
	})
	if err != nil {
		t.Fatal(err)
	}
	env := append(crawlEnv(s, w.Graph, "BTCPIPE_CRAWL_OUT="),
		"BTCPIPE_CRAWL_ALLOW="+s.Prefix().String()+",::1/128",
		"BTCPIPE_TOR_PROXY="+socks.Addr().String(), "BTCPIPE_I2P_SAM="+sam.Addr().String())

	t.Run("all networks", func(t *testing.T) {
		setenv(t, env)
		var stdout, stderr bytes.Buffer
		if code := run([]string{"crawl"}, &stdout, &stderr); code != exitOK {
			t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
		}
		_, sum := parseCrawlOutput(t, stdout.Bytes())
		if sum == nil {
			t.Fatal("no summary")
		}
		for n, want := range w.ByNetwork {
			if got := sum.ReachableByNetwork[n.String()]; got != want {
				t.Errorf("reachable on %s: %d, want %d", n, got, want)
			}
		}
		if sum.UniqueNodes != 40 {
			t.Errorf("unique nodes %d, want 40", sum.UniqueNodes)
		}
	})
	t.Run("onlynet", func(t *testing.T) {
		setenv(t, append(env, "BTCPIPE_ONLYNET=ipv4,onion"))
		var stdout, stderr bytes.Buffer
		if code := run([]string{"crawl"}, &stdout, &stderr); code != exitOK {
			t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
		}
		recs, sum := parseCrawlOutput(t, stdout.Bytes())
		if sum == nil {
			t.Fatal("no summary")
		}
		// Some Tor nodes are named only by the excluded ones: fewer are found.
		if tor := sum.ReachableByNetwork["torv3"]; sum.ReachableByNetwork["i2p"] != 0 || sum.ReachableByNetwork["ipv6"] != 0 || tor == 0 || tor > w.ByNetwork[wire.NetTorV3] {
			t.Fatalf("summary %+v", sum)
		}
		for _, r := range recs {
			if (r.Network == "i2p" || r.Network == "ipv6") && (r.Outcome != crawler.NotDialled || !strings.HasPrefix(r.Reason, "onlynet excludes")) {
				t.Errorf("%s: %s %q, want not_dialled by onlynet", r.Addr, r.Outcome, r.Reason)
			}
		}
	})
}
