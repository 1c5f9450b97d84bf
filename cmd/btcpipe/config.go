package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/sirupsen/logrus"

	"github.com/btcpipe/btcpipe/internal/version"
	"github.com/btcpipe/btcpipe/netreach"
	"github.com/btcpipe/btcpipe/pipeline"
	"github.com/btcpipe/btcpipe/wire"
)

// envPrefix is the prefix of every setting: BTCPIPE_NETWORK and so on.
const envPrefix = "BTCPIPE"

// Config is every setting btcpipe reads. It comes only from the environment.
type Config struct {
	Network   string `envconfig:"NETWORK" default:"mainnet" desc:"network: mainnet, testnet3, testnet4, signet, regtest or simnet"`
	Peer      string `envconfig:"PEER" desc:"peer to connect to: host:port, [IPv6]:port, a host name, NAME.onion:port (needs TOR_PROXY or PROXY) or NAME.b32.i2p:0 (needs I2P_SAM); empty: one address from the network's DNS seeds (regtest: 127.0.0.1:18444)"`
	LogLevel  string `envconfig:"LOG_LEVEL" default:"info" desc:"log level: trace, debug (hex dumps of every message), info, warn, error"`
	LogFormat string `envconfig:"LOG_FORMAT" default:"text" desc:"log format: text (coloured on a terminal) or json (one event per line)"`
	UserAgent string `envconfig:"USER_AGENT" desc:"user agent sent in version; empty: /btcpipe:VERSION/"`

	MinProtocol      int32         `envconfig:"MIN_PROTOCOL" default:"70001" desc:"oldest peer protocol version accepted"`
	SendAddrV2       bool          `envconfig:"SEND_ADDRV2" default:"true" desc:"ask peers for addrv2 (BIP155) instead of addr"`
	HandshakeTimeout time.Duration `envconfig:"HANDSHAKE_TIMEOUT" default:"30s" desc:"time allowed for the version handshake"`
	PingInterval     time.Duration `envconfig:"PING_INTERVAL" default:"2m" desc:"how often to ping the peer"`
	PingTimeout      time.Duration `envconfig:"PING_TIMEOUT" default:"20m" desc:"disconnect when a ping is not answered within this"`
	DialTimeout      time.Duration `envconfig:"DIAL_TIMEOUT" default:"10s" desc:"TCP connect timeout"`
	WriteTimeout     time.Duration `envconfig:"WRITE_TIMEOUT" default:"30s" desc:"deadline of each write to the peer"`
	BackoffMin       time.Duration `envconfig:"BACKOFF_MIN" default:"1s" desc:"first wait before reconnecting (doubles after each failure)"`
	BackoffMax       time.Duration `envconfig:"BACKOFF_MAX" default:"5m" desc:"longest wait before reconnecting"`
	MaxAddrs         int           `envconfig:"MAX_ADDRS" default:"100000" desc:"most unique peer addresses kept in memory"`

	QueueDepth int    `envconfig:"QUEUE_DEPTH" default:"16" desc:"capacity of each channel between stages"`
	Framer     string `envconfig:"FRAMER" default:"slab" desc:"framer stage implementation"`
	Verifier   string `envconfig:"VERIFIER" default:"sequential" desc:"checksum verifier stage: sequential or parallel"`
	Workers    int    `envconfig:"WORKERS" default:"0" desc:"parallel verifier workers; 0: one per CPU"`
	ReadBuffer int    `envconfig:"READ_BUFFER" default:"65536" desc:"reader's base buffer size in bytes"`
	Record     string `envconfig:"RECORD" desc:"file to append the raw inbound byte stream to (for btcpipe decode)"`

	// How each network is reached (node and crawl; see netreach).
	TorProxy       string `envconfig:"TOR_PROXY" desc:"host:port of Tor's SOCKS port (usually 127.0.0.1:9050): .onion peers go through it, each connection with its own random credentials (its own circuit); empty: PROXY, else Tor is not dialled"`
	I2PSAM         string `envconfig:"I2P_SAM" desc:"host:port of an I2P SAM v3.1 bridge (usually 127.0.0.1:7656): .b32.i2p peers (port 0) go through one transient session; empty: I2P is not dialled"`
	CJDNSReachable bool   `envconfig:"CJDNS_REACHABLE" default:"false" desc:"the host has a route into fc00::/8 (cjdroute): CJDNS peers are dialled directly"`
	Proxy          string `envconfig:"PROXY" desc:"host:port of a SOCKS5 proxy for every IPv4, IPv6 and CJDNS connection (and Tor when TOR_PROXY is empty), as Bitcoin Core's -proxy: nothing is dialled directly and host names go to the proxy unresolved"`
	OnlyNet        string `envconfig:"ONLYNET" desc:"comma-separated networks to dial, as Bitcoin Core's -onlynet: ipv4, ipv6, onion, i2p, cjdns; empty: all"`

	onlyNet []wire.NetID // parsed OnlyNet
}

// loadConfig reads the environment and checks every value.
func loadConfig() (Config, error) {
	var c Config
	if err := envconfig.Process(envPrefix, &c); err != nil {
		var pe *envconfig.ParseError
		if errors.As(err, &pe) {
			return c, fmt.Errorf("%s=%q: %v", pe.KeyName, pe.Value, pe.Err)
		}
		return c, err
	}
	err := c.validate() // before c is copied: it fills the parsed fields
	return c, err
}

func (c *Config) validate() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("%s_%s: %s", envPrefix, key, fmt.Sprintf(format, args...))
	}
	if _, err := wire.NetworkByName(c.Network); err != nil {
		return bad("NETWORK", "unknown network %q (want one of %s)", c.Network, strings.Join(wire.NetworkNames(), ", "))
	}
	if _, err := logrus.ParseLevel(c.LogLevel); err != nil {
		return bad("LOG_LEVEL", "unknown level %q (want trace, debug, info, warn or error)", c.LogLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return bad("LOG_FORMAT", "want text or json, not %q", c.LogFormat)
	}
	if c.Peer != "" {
		a, _, err := netreach.ParsePeer(c.Peer, 1)
		switch {
		case err != nil && !errors.Is(err, netreach.ErrHostName):
			return bad("PEER", "%v", err)
		case err == nil && a.Network == wire.NetTorV3 && c.TorProxy == "" && c.Proxy == "":
			return bad("PEER", "%s is a Tor address: set %s_TOR_PROXY (Tor's SOCKS port, usually 127.0.0.1:9050) or %s_PROXY", c.Peer, envPrefix, envPrefix)
		case err == nil && a.Network == wire.NetI2P && c.I2PSAM == "":
			return bad("PEER", "%s is an I2P address: set %s_I2P_SAM (the SAM bridge, usually 127.0.0.1:7656)", c.Peer, envPrefix)
		case err == nil && a.Network == wire.NetCJDNS && !c.CJDNSReachable && c.Proxy == "":
			return bad("PEER", "%s is a CJDNS address (fc00::/8): set %s_CJDNS_REACHABLE=true when the host has a route there", c.Peer, envPrefix)
		}
	}
	for _, f := range []struct{ key, v string }{{"TOR_PROXY", c.TorProxy}, {"I2P_SAM", c.I2PSAM}, {"PROXY", c.Proxy}} {
		if f.v == "" {
			continue
		}
		host, port, err := net.SplitHostPort(f.v)
		if n, perr := strconv.ParseUint(port, 10, 16); err != nil || perr != nil || n == 0 || host == "" || strings.Contains(host, "/") {
			return bad(f.key, "want host:port, not %q", f.v)
		}
	}
	onlyNet, err := netreach.ParseOnlyNet(c.OnlyNet)
	if err != nil {
		return bad("ONLYNET", "%v", err)
	}
	c.onlyNet = onlyNet
	if len(c.UserAgent) > wire.MaxUserAgentLen {
		return bad("USER_AGENT", "longer than %d bytes", wire.MaxUserAgentLen)
	}
	durations := []struct {
		key string
		d   time.Duration
	}{
		{"HANDSHAKE_TIMEOUT", c.HandshakeTimeout}, {"PING_INTERVAL", c.PingInterval},
		{"PING_TIMEOUT", c.PingTimeout}, {"DIAL_TIMEOUT", c.DialTimeout}, {"WRITE_TIMEOUT", c.WriteTimeout},
		{"BACKOFF_MIN", c.BackoffMin}, {"BACKOFF_MAX", c.BackoffMax},
	}
	for _, d := range durations {
		if d.d <= 0 {
			return bad(d.key, "must be a positive duration, like 30s or 2m")
		}
	}
	if c.BackoffMax < c.BackoffMin {
		return bad("BACKOFF_MAX", "%s is shorter than %s_BACKOFF_MIN (%s)", c.BackoffMax, envPrefix, c.BackoffMin)
	}
	if c.QueueDepth < 1 || c.QueueDepth > 1<<16 {
		return bad("QUEUE_DEPTH", "must be 1 to 65536, not %d", c.QueueDepth)
	}
	if c.Workers < 0 || c.Workers > 1024 {
		return bad("WORKERS", "must be 0 to 1024, not %d", c.Workers)
	}
	if c.ReadBuffer < 1024 || c.ReadBuffer > 8<<20 {
		return bad("READ_BUFFER", "must be 1024 to 8388608 bytes, not %d", c.ReadBuffer)
	}
	if c.MaxAddrs < 1 {
		return bad("MAX_ADDRS", "must be at least 1")
	}
	if c.MinProtocol < 0 {
		return bad("MIN_PROTOCOL", "must not be negative")
	}
	if _, err := pipeline.DefaultStages.Framers.Get(c.Framer); err != nil {
		return bad("FRAMER", "%v", err)
	}
	if _, err := pipeline.DefaultStages.Verifiers.Get(c.Verifier); err != nil {
		return bad("VERIFIER", "%v", err)
	}
	return nil
}

// printUsage writes every variable with its default and meaning.
func printUsage(w io.Writer) {
	var c Config
	fmt.Fprintf(w, "btcpipe %s: a Bitcoin P2P node built as a pipeline of goroutine stages.\n\n", version.Version)
	fmt.Fprintln(w, "Usage:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, cmd := range commands {
		fmt.Fprintf(tw, "  btcpipe %s %s\t%s\n", cmd.name, cmd.args, cmd.summary)
	}
	fmt.Fprintf(tw, "  btcpipe help\tthis text\n")
	tw.Flush()
	fmt.Fprint(w, "\nEvery setting is an environment variable:\n\n")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tTYPE\tDEFAULT\tMEANING")
	const row = "{{range .}}{{usage_key .}}\t{{usage_type .}}\t{{usage_default .}}\t{{usage_description .}}\n{{end}}"
	_ = envconfig.Usagef(envPrefix, &c, tw, row)
	for _, cmd := range commands {
		if cmd.config != nil {
			_ = envconfig.Usagef(envPrefix, cmd.config, tw, row)
		}
	}
	tw.Flush()
}

// loadSection fills a command's own settings from the environment.
func loadSection(spec any) error {
	// Start from zero: envconfig leaves a field whose variable is unset
	// and has no default as it was, so a second run in one process (the
	// tests) would inherit the first one's values.
	if v := reflect.ValueOf(spec); v.Kind() == reflect.Pointer && !v.IsNil() {
		v.Elem().SetZero()
	}
	if err := envconfig.Process(envPrefix, spec); err != nil {
		var pe *envconfig.ParseError
		if errors.As(err, &pe) {
			return fmt.Errorf("%s=%q: %v", pe.KeyName, pe.Value, pe.Err)
		}
		return err
	}
	if v, ok := spec.(interface{ validate() error }); ok {
		return v.validate()
	}
	return nil
}

// reachConfig is how node and crawl reach each network.
func reachConfig(c *Config) netreach.Config {
	return netreach.Config{
		TorProxy: c.TorProxy, I2PSAM: c.I2PSAM, CJDNSReachable: c.CJDNSReachable,
		Proxy: c.Proxy, OnlyNet: c.onlyNet,
	}
}
