package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/sirupsen/logrus"

	"github.com/btcpipe/btcpipe/internal/version"
	"github.com/btcpipe/btcpipe/netreach"
	"github.com/btcpipe/btcpipe/peer"
	"github.com/btcpipe/btcpipe/pipeline"
	"github.com/btcpipe/btcpipe/stages"
	"github.com/btcpipe/btcpipe/wire"
)

// envPrefix is the prefix of every setting: BTCPIPE_NETWORK and so on.
const envPrefix = "BTCPIPE"

// Config is the settings every command shares. Defaults are not written
// here: defaultConfig takes them from the packages that own them, and help
// prints them from there.
type Config struct {
	Network   string `envconfig:"NETWORK" desc:"network: mainnet, testnet3, testnet4, signet, regtest or simnet"`
	Peer      string `envconfig:"PEER" desc:"peer to connect to: host:port, [IPv6]:port, a host name, NAME.onion:port (needs TOR_PROXY or PROXY) or NAME.b32.i2p:0 (needs I2P_SAM); empty: one address from the network's DNS seeds (regtest: 127.0.0.1:18444)"`
	LogLevel  string `envconfig:"LOG_LEVEL" desc:"log level: trace, debug (hex dumps of every message), info, warn, error"`
	LogFormat string `envconfig:"LOG_FORMAT" desc:"log format: text (coloured on a terminal) or json (one event per line)"`
	UserAgent string `envconfig:"USER_AGENT" desc:"user agent sent in version; empty: /btcpipe:VERSION/"`

	MinProtocol      int32         `envconfig:"MIN_PROTOCOL" desc:"oldest peer protocol version accepted"`
	SendAddrV2       bool          `envconfig:"SEND_ADDRV2" desc:"ask peers for addrv2 (BIP155) instead of addr"`
	HandshakeTimeout time.Duration `envconfig:"HANDSHAKE_TIMEOUT" desc:"time allowed for the version handshake"`
	PingInterval     time.Duration `envconfig:"PING_INTERVAL" desc:"how often to ping the peer"`
	PingTimeout      time.Duration `envconfig:"PING_TIMEOUT" desc:"disconnect when a ping is not answered within this"`
	DialTimeout      time.Duration `envconfig:"DIAL_TIMEOUT" desc:"TCP connect timeout"`
	WriteTimeout     time.Duration `envconfig:"WRITE_TIMEOUT" desc:"deadline of each write to the peer"`
	BackoffMin       time.Duration `envconfig:"BACKOFF_MIN" desc:"first wait before reconnecting (doubles after each failure)"`
	BackoffMax       time.Duration `envconfig:"BACKOFF_MAX" desc:"longest wait before reconnecting"`
	MaxAddrs         int           `envconfig:"MAX_ADDRS" desc:"most unique peer addresses kept in memory"`

	QueueDepth int `envconfig:"QUEUE_DEPTH" desc:"capacity of each channel between stages"`
	// Receive budgets (like Bitcoin Core's -maxreceivebuffer): a
	// connection over its own or the process's stops reading.
	ConnBudget   int64         `envconfig:"CONN_BUDGET" desc:"bytes of receive buffers one connection may hold (Bitcoin Core's -maxreceivebuffer); over it, it stops reading"`
	MemoryBudget int64         `envconfig:"MEMORY_BUDGET" desc:"bytes of receive buffers all connections together may hold; over it, they stop reading, first come first served"`
	BudgetWait   time.Duration `envconfig:"BUDGET_WAIT" desc:"longest a connection waits for room in its budgets before it is dropped"`
	// The stages (see the README's "Swapping a stage"): a transport names
	// the stages that depend on the wire format; each BTCPIPE_<STAGE>
	// overrides one.
	Transport  string `envconfig:"TRANSPORT" desc:"transport: v1 (cleartext), v2 (BIP324 only) or auto (v2, falling back to v1 for peers that close the v2 handshake); the stages that depend on the wire format come as its bundle"`
	Reader     string `envconfig:"READER" desc:"reader stage; empty: the transport's"`
	Framer     string `envconfig:"FRAMER" desc:"framer stage; empty: the transport's"`
	Verifier   string `envconfig:"VERIFIER" desc:"checksum verifier stage; empty: the transport's"`
	Dispatcher string `envconfig:"DISPATCHER" desc:"dispatcher stage; empty: the default"`
	Writer     string `envconfig:"WRITER" desc:"writer stage; empty: the transport's"`
	Workers    int    `envconfig:"WORKERS" desc:"parallel verifier workers; 0: one per CPU"`
	ReadBuffer int    `envconfig:"READ_BUFFER" desc:"bytes the reader reads into at once (64 KiB to 8 MiB, rounded up to a power of two; it grows to 8 times the largest frame seen)"`
	Record     string `envconfig:"RECORD" desc:"file to append the raw inbound byte stream to (for btcpipe decode)"`

	// How each network is reached (node and crawl; see netreach).
	TorProxy       string `envconfig:"TOR_PROXY" desc:"host:port of Tor's SOCKS port (usually 127.0.0.1:9050): .onion peers go through it, each connection with its own random credentials (its own circuit); empty: PROXY, else Tor is not dialled"`
	I2PSAM         string `envconfig:"I2P_SAM" desc:"host:port of an I2P SAM v3.1 bridge (usually 127.0.0.1:7656): .b32.i2p peers (port 0) go through one transient session; empty: I2P is not dialled"`
	CJDNSReachable bool   `envconfig:"CJDNS_REACHABLE" desc:"the host has a route into fc00::/8 (cjdroute): CJDNS peers are dialled directly"`
	Proxy          string `envconfig:"PROXY" desc:"host:port of a SOCKS5 proxy for every IPv4, IPv6 and CJDNS connection (and Tor when TOR_PROXY is empty), as Bitcoin Core's -proxy: nothing is dialled directly and host names go to the proxy unresolved"`
	OnlyNet        string `envconfig:"ONLYNET" desc:"comma-separated networks to dial, as Bitcoin Core's -onlynet: ipv4, ipv6, onion, i2p, cjdns; empty: all"`

	onlyNet []wire.NetID // parsed OnlyNet
}

// defaultConfig returns the shared settings at their defaults, each taken
// from the package that owns it.
func defaultConfig() Config {
	s := peer.DefaultConfig(&wire.Mainnet)
	o := stages.Options{}.Defaults()
	return Config{
		Network:          wire.Mainnet.Name,
		LogLevel:         logrus.InfoLevel.String(),
		LogFormat:        "text",
		UserAgent:        s.UserAgent,
		MinProtocol:      s.MinProtocol,
		SendAddrV2:       s.SendAddrV2,
		HandshakeTimeout: s.HandshakeTimeout,
		PingInterval:     s.PingInterval,
		PingTimeout:      s.PingTimeout,
		DialTimeout:      peer.DefaultDialTimeout,
		WriteTimeout:     o.WriteTimeout,
		BackoffMin:       peer.DefaultBackoffMin,
		BackoffMax:       peer.DefaultBackoffMax,
		MaxAddrs:         peer.DefaultMaxAddrs,
		QueueDepth:       pipeline.DefaultQueueDepth,
		ConnBudget:       stages.DefaultConnBudget,
		MemoryBudget:     stages.DefaultProcessBudget,
		BudgetWait:       stages.DefaultBudgetWait,
		Transport:        peer.DefaultTransport,
		ReadBuffer:       stages.MinSlab,
	}
}

// shared returns c (every command's settings embed a Config).
func (c *Config) shared() *Config { return c }

// settings is one command's settings: a Config embedded and the command's
// own sections, loaded together from the environment, fresh for each run.
type settings interface {
	shared() *Config
	validate() error
}

// load fills s (holding its defaults) from the environment and checks
// every value. A variable that is not set leaves its default.
func load(s settings) error {
	if err := envconfig.Process(envPrefix, s); err != nil {
		var pe *envconfig.ParseError
		if errors.As(err, &pe) {
			return fmt.Errorf("%s=%q: %v", pe.KeyName, pe.Value, pe.Err)
		}
		return err
	}
	return s.validate()
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
	if c.ConnBudget < stages.MinSlab {
		return bad("CONN_BUDGET", "must be at least %d bytes (one read buffer), not %d", stages.MinSlab, c.ConnBudget)
	}
	if c.MemoryBudget < c.ConnBudget {
		return bad("MEMORY_BUDGET", "%d is less than %s_CONN_BUDGET (%d)", c.MemoryBudget, envPrefix, c.ConnBudget)
	}
	if c.BudgetWait <= 0 {
		return bad("BUDGET_WAIT", "must be a positive duration, like 1m")
	}
	if c.QueueDepth < 1 || c.QueueDepth > 1<<16 {
		return bad("QUEUE_DEPTH", "must be 1 to 65536, not %d", c.QueueDepth)
	}
	if c.Workers < 0 || c.Workers > 1024 {
		return bad("WORKERS", "must be 0 to 1024, not %d", c.Workers)
	}
	if c.ReadBuffer < stages.MinSlab || c.ReadBuffer > stages.MaxSlab {
		return bad("READ_BUFFER", "must be %d to %d bytes, not %d", stages.MinSlab, stages.MaxSlab, c.ReadBuffer)
	}
	if c.MaxAddrs < 1 {
		return bad("MAX_ADDRS", "must be at least 1")
	}
	if c.MinProtocol < 0 {
		return bad("MIN_PROTOCOL", "must not be negative")
	}
	if err := peer.ValidTransport(c.Transport); err != nil || c.Transport == "" {
		return bad("TRANSPORT", "must be v1, v2 or auto, not %q", c.Transport)
	}
	// Each stage variable names one entry of its registry; then the
	// combination must fit every transport the policy dials (a v1 framer
	// under a v2 writer does not).
	st := pipeline.DefaultStages
	for _, v := range []struct {
		key, name string
		get       func(string) error
	}{
		{"READER", c.Reader, func(n string) error { _, err := st.Readers.Get(n); return err }},
		{"FRAMER", c.Framer, func(n string) error { _, err := st.Framers.Get(n); return err }},
		{"VERIFIER", c.Verifier, func(n string) error { _, err := st.Verifiers.Get(n); return err }},
		{"DISPATCHER", c.Dispatcher, func(n string) error { _, err := st.Dispatchers.Get(n); return err }},
		{"WRITER", c.Writer, func(n string) error { _, err := st.Writers.Get(n); return err }},
	} {
		if v.name != "" {
			if err := v.get(v.name); err != nil {
				return bad(v.key, "%v", err)
			}
		}
	}
	for _, t := range peer.TransportsOf(c.Transport) { // the stages fit every transport the policy dials
		pc := pipelineConfig(c)
		pc.Transport = t
		if c.Transport == peer.TransportAuto {
			pc = peer.ConfigFor(pc, t)
		}
		if err := pc.Validate(); err != nil {
			return bad("TRANSPORT", "%s", strings.ReplaceAll(strings.TrimPrefix(err.Error(), "pipeline: "), "\n", "; "))
		}
	}
	return nil
}

// pipelineConfig is the pipeline configuration of c's stage settings.
//
// It makes the process's receive budget, shared by every connection of the
// pipelines made from it: call it once per command run.
func pipelineConfig(c *Config) pipeline.Config {
	return pipeline.Config{
		Options:    stagesOptions(c),
		QueueDepth: c.QueueDepth,
		ConnBudget: c.ConnBudget,
		Budget:     stages.NewBudget("process", c.MemoryBudget, nil),
		BudgetWait: c.BudgetWait,
		// The transport is a policy (v1, v2, auto) the dialer applies
		// per connection (peer.Dialer.Transport): none here.
		Reader:     c.Reader,
		Framer:     c.Framer,
		Verifier:   c.Verifier,
		Dispatcher: c.Dispatcher,
		Writer:     c.Writer,
	}
}

// stagesOptions is the stages' options of c.
func stagesOptions(c *Config) stages.Options {
	workers := c.Workers
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	return stages.Options{ReadSize: c.ReadBuffer, Workers: workers, WriteTimeout: c.WriteTimeout}
}

// stageNames lists, for help, the names each stage variable accepts and
// which is the default (from the registries: a stage registered at start
// shows up here).
func stageNames() map[string]string {
	out := map[string]string{}
	for _, k := range pipeline.DefaultStages.Catalog() {
		var names []string
		def := ""
		for _, e := range k.Entries {
			names = append(names, e.Name)
			if e.Default {
				def = e.Name
			}
		}
		out[strings.ToUpper(k.Kind)] = "have " + strings.Join(names, ", ") + "; default " + def
	}
	return out
}

// printUsage writes the commands, then every variable with its default
// (from the settings' defaults, so from the packages that own them) and
// meaning.
func printUsage(w io.Writer) {
	fmt.Fprintf(w, "btcpipe %s: a Bitcoin P2P node built as a pipeline of goroutine stages.\n\n", version.Version)
	fmt.Fprintln(w, "Usage:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, cmd := range commands {
		fmt.Fprintf(tw, "  btcpipe %s %s\t%s\n", cmd.name, cmd.args, cmd.summary)
	}
	fmt.Fprintf(tw, "  btcpipe help\tthis text\n")
	tw.Flush()
	fmt.Fprint(w, "\nEvery setting is an environment variable (empty DEFAULT: unset):\n\n")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tTYPE\tDEFAULT\tMEANING")
	names := stageNames()
	seen := map[string]bool{}
	for _, cmd := range commands {
		for _, r := range usageRows(cmd.settings()) {
			if seen[r.key] {
				continue
			}
			seen[r.key] = true
			desc := r.desc
			if n, ok := names[strings.TrimPrefix(r.key, envPrefix+"_")]; ok {
				desc += " (" + n + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.key, r.typ, r.def, desc)
		}
	}
	tw.Flush()
}

// usageRow is one variable in help.
type usageRow struct{ key, typ, def, desc string }

// usageRows lists the variables of spec (a pointer to a settings struct,
// holding its defaults), embedded structs included, in field order.
func usageRows(spec any) []usageRow {
	var rows []usageRow
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		t := v.Type()
		for i := range t.NumField() {
			f, fv := t.Field(i), v.Field(i)
			if !f.IsExported() {
				continue
			}
			if f.Anonymous && f.Type.Kind() == reflect.Struct {
				walk(fv)
				continue
			}
			key := f.Tag.Get("envconfig")
			if key == "" {
				continue
			}
			rows = append(rows, usageRow{key: envPrefix + "_" + key, typ: usageType(f.Type), def: usageDefault(fv), desc: f.Tag.Get("desc")})
		}
	}
	walk(reflect.ValueOf(spec).Elem())
	return rows
}

func usageType(t reflect.Type) string {
	switch {
	case t == reflect.TypeFor[time.Duration]():
		return "Duration"
	case t.Kind() == reflect.Slice:
		return "List"
	case t.Kind() == reflect.Bool:
		return "Bool"
	case t.Kind() == reflect.String:
		return "String"
	case t.Kind() == reflect.Float64:
		return "Number"
	default:
		return "Integer"
	}
}

func usageDefault(v reflect.Value) string {
	switch x := v.Interface().(type) {
	case time.Duration:
		return shortDuration(x)
	case []string:
		return strings.Join(x, ",")
	default:
		return fmt.Sprint(x)
	}
}

// shortDuration writes d as 2m rather than 2m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// reachConfig is how node and crawl reach each network.
func reachConfig(c *Config) netreach.Config {
	return netreach.Config{
		TorProxy: c.TorProxy, I2PSAM: c.I2PSAM, CJDNSReachable: c.CJDNSReachable,
		Proxy: c.Proxy, OnlyNet: c.onlyNet,
	}
}
