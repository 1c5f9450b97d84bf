package benchmarks

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"sync"

	"github.com/btcpipe/btcpipe/wire"
)

// corpusSize is about how many bytes each synthetic corpus holds.
const corpusSize = 2 << 20

// recordedFile is the stream recorded from btcd (go run ./benchmarks/record).
const recordedFile = "../cmd/btcpipe/testdata/btcd-regtest.rec"

// corpus is one byte stream of frames.
type corpus struct {
	name     string
	magic    wire.Magic
	stream   []byte
	payloads [][]byte // each frame's payload, aliasing stream
	maxFrame int      // the largest frame, header included
}

func (c *corpus) frames() int { return len(c.payloads) }

// corpusDef builds one corpus.
type corpusDef struct {
	name  string
	build func() (*corpus, error)
}

// corpusDefs lists the corpora in the order the table shows them.
var corpusDefs = []corpusDef{
	{"verack", repeated("verack", func(*rand.Rand) wire.Message { return &wire.Verack{} })},
	{"ping", repeated("ping", func(r *rand.Rand) wire.Message { return &wire.Ping{Nonce: r.Uint64(), HasNonce: true} })},
	{"version", repeated("version", versionMsg)},
	{"addr", repeated("addr", func(r *rand.Rand) wire.Message { return addrMsg(r, 1000) })},
	{"addrv2", repeated("addrv2", func(r *rand.Rand) wire.Message { return addrV2Msg(r, 1000) })},
	{"inv", repeated("inv", func(r *rand.Rand) wire.Message { return &wire.Inv{InvList: invList(r, 500)} })},
	{"tx250", repeated("tx250", func(r *rand.Rand) wire.Message { return &wire.Raw{Cmd: wire.CmdTx, Payload: sizedTx(r, 250)} })},
	{"tx10k", repeated("tx10k", func(r *rand.Rand) wire.Message { return &wire.Raw{Cmd: wire.CmdTx, Payload: sizedTx(r, 10_000)} })},
	{"block", blocks},
	{"mix", mix},
	{"recorded", recorded},
}

var corpusCache sync.Map // name → func() (*corpus, error)

// getCorpus builds the named corpus once.
func getCorpus(d corpusDef) (*corpus, error) {
	f, _ := corpusCache.LoadOrStore(d.name, sync.OnceValues(d.build))
	return f.(func() (*corpus, error))()
}

// newRand returns the PRNG of a corpus: the same bytes on every run.
func newRand(name string) *rand.Rand {
	var seed uint64
	for _, c := range name {
		seed = seed*131 + uint64(c)
	}
	return rand.New(rand.NewPCG(seed, 0x62747370697065)) // "btcpipe"
}

// frameStream cuts a stream into a corpus, checking every frame.
func frameStream(name string, magic wire.Magic, stream []byte) (*corpus, error) {
	c := &corpus{name: name, magic: magic, stream: stream}
	for off := 0; off < len(stream); {
		f, n, err := wire.ScanFrame(stream[off:], magic)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("corpus %s: bad frame at offset %d: %v", name, off, err)
		}
		if !f.Verify() {
			return nil, fmt.Errorf("corpus %s: bad checksum at offset %d", name, off)
		}
		c.payloads = append(c.payloads, f.Payload)
		c.maxFrame = max(c.maxFrame, n)
		off += n
	}
	return c, nil
}

// repeated returns a builder of a corpus of about corpusSize bytes of
// messages made by gen.
func repeated(name string, gen func(*rand.Rand) wire.Message) func() (*corpus, error) {
	return func() (*corpus, error) {
		r := newRand(name)
		var stream []byte
		for len(stream) < corpusSize {
			stream = wire.AppendMessage(stream, wire.Mainnet.Magic, gen(r))
		}
		return frameStream(name, wire.Mainnet.Magic, stream)
	}
}

// versionMsg is a version as Bitcoin Core 27 sends it.
func versionMsg(r *rand.Rand) wire.Message {
	return &wire.Version{
		Protocol:    wire.ProtocolVersion,
		Services:    wire.ServiceFlag(1 | 8 | 1024 | 2048), // NETWORK, WITNESS, NETWORK_LIMITED, P2P_V2
		Timestamp:   1_730_000_000 + r.Int64N(1_000_000),
		AddrRecv:    wire.NetAddr{Addr: netip.AddrPortFrom(randIPv4(r), 8333)},
		AddrFrom:    wire.NetAddr{Services: 1 | 8 | 1024 | 2048, Addr: netip.AddrPortFrom(netip.IPv6Unspecified(), 0)},
		Nonce:       r.Uint64(),
		UserAgent:   "/Satoshi:27.1.0/",
		StartHeight: 870_000 + r.Int32N(10_000),
		Relay:       true,
	}
}

func randIPv4(r *rand.Rand) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(1 + r.IntN(223)), byte(r.IntN(256)), byte(r.IntN(256)), byte(1 + r.IntN(254))})
}

func randIPv6(r *rand.Rand) netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], 0x2001_0000_0000_0000|r.Uint64()>>16)
	binary.BigEndian.PutUint64(b[8:], r.Uint64())
	return netip.AddrFrom16(b)
}

func randTime(r *rand.Rand) uint32 { return 1_730_000_000 + r.Uint32N(86_400*7) }

// addrMsg is an addr of n IPv4 entries.
func addrMsg(r *rand.Rand, n int) wire.Message {
	m := &wire.Addr{List: make([]wire.TimedNetAddr, n)}
	for i := range m.List {
		m.List[i] = wire.TimedNetAddr{Time: randTime(r), NetAddr: wire.NetAddr{
			Services: 1 | 8 | 1024, Addr: netip.AddrPortFrom(randIPv4(r), 8333),
		}}
	}
	return m
}

// addrV2Msg is an addrv2 of n entries: 60 % IPv4, 15 % IPv6, 20 % Tor v3,
// 4 % I2P, 1 % CJDNS.
func addrV2Msg(r *rand.Rand, n int) wire.Message {
	m := &wire.AddrV2{List: make([]wire.NetAddrV2, n)}
	for i := range m.List {
		a := wire.NetAddrV2{Time: randTime(r), Services: 1 | 8 | 1024, Port: 8333}
		switch p := r.IntN(100); {
		case p < 60:
			a.Network = wire.NetIPv4
			a = a.WithIP(randIPv4(r))
		case p < 75:
			a.Network = wire.NetIPv6
			a = a.WithIP(randIPv6(r))
		case p < 95:
			var key [32]byte
			fillRand(r, key[:])
			a.Network = wire.NetTorV3
			a = a.WithKey(key)
		case p < 99:
			var key [32]byte
			fillRand(r, key[:])
			a.Network, a.Port = wire.NetI2P, 0
			a = a.WithKey(key)
		default:
			var b [16]byte
			fillRand(r, b[:])
			b[0] = 0xfc
			a.Network = wire.NetCJDNS
			a = a.WithIP(netip.AddrFrom16(b))
		}
		m.List[i] = a
	}
	return m
}

// invList returns n MSG_WTX entries.
func invList(r *rand.Rand, n int) wire.InvList {
	list := make([]wire.InvVect, n)
	for i := range list {
		list[i].Type = wire.InvWTx
		fillRand(r, list[i].Hash[:])
	}
	return wire.InvList{List: list}
}

func fillRand(r *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(r.Uint32())
	}
}

// Legacy transaction sizes: an input with a P2PKH signature script is 148
// bytes, a P2PKH output 34, and version, counts and lock time 10.
const (
	txInSize    = 32 + 4 + 1 + 107 + 4
	txOutSize   = 8 + 1 + 25
	txFixedSize = 4 + 1 + 1 + 4
)

// appendTx appends a legacy transaction with nIn inputs and nOut outputs,
// the last input's signature script lengthened by extra bytes (extra+107 <
// 253).
func appendTx(dst []byte, r *rand.Rand, nIn, nOut, extra int) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, 2)
	dst = wire.AppendVarInt(dst, uint64(nIn))
	for i := range nIn {
		var prev [36]byte
		fillRand(r, prev[:])
		dst = append(dst, prev[:]...)
		script := make([]byte, 107)
		if i == nIn-1 {
			script = make([]byte, 107+extra)
		}
		fillRand(r, script)
		dst = wire.AppendVarBytes(dst, script)
		dst = binary.LittleEndian.AppendUint32(dst, 0xfffffffd)
	}
	dst = wire.AppendVarInt(dst, uint64(nOut))
	for range nOut {
		dst = binary.LittleEndian.AppendUint64(dst, uint64(r.Int64N(100_000_000)))
		pk := make([]byte, 25)
		pk[0], pk[1], pk[2], pk[23], pk[24] = 0x76, 0xa9, 0x14, 0x88, 0xac
		fillRand(r, pk[3:23])
		dst = wire.AppendVarBytes(dst, pk)
	}
	return binary.LittleEndian.AppendUint32(dst, 0)
}

// sizedTx returns a legacy transaction of exactly size bytes (size ≥ 226).
func sizedTx(r *rand.Rand, size int) []byte {
	nOut := 2
	nIn := max(1, (size-txFixedSize-nOut*txOutSize)/txInSize)
	extra := size - txFixedSize - nOut*txOutSize - nIn*txInSize
	if nIn > 252 || extra < 0 || extra+107 >= 253 {
		panic(fmt.Sprintf("sizedTx(%d): no layout", size))
	}
	tx := appendTx(nil, r, nIn, nOut, extra)
	if len(tx) != size {
		panic(fmt.Sprintf("sizedTx(%d) made %d bytes", size, len(tx)))
	}
	return tx
}

// mixTx returns a legacy transaction shaped like mainnet's (see the
// package documentation).
func mixTx(r *rand.Rand) []byte {
	var nIn int
	switch p := r.IntN(100); {
	case p < 60:
		nIn = 1
	case p < 80:
		nIn = 2
	case p < 92:
		nIn = 3 + r.IntN(3)
	case p < 98:
		nIn = 6 + r.IntN(15)
	default:
		nIn = 21 + r.IntN(40)
	}
	var nOut int
	switch p := r.IntN(100); {
	case p < 15:
		nOut = 1
	case p < 85:
		nOut = 2
	default:
		nOut = 3 + r.IntN(8)
	}
	return appendTx(nil, r, nIn, nOut, r.IntN(40))
}

// blocks is four blocks of about 1 MB of legacy transactions.
func blocks() (*corpus, error) {
	r := newRand("block")
	var stream []byte
	for range 4 {
		var txs [][]byte
		size := 0
		coinbase := appendTx(nil, r, 1, 2, 0)
		txs = append(txs, coinbase)
		size += len(coinbase)
		for {
			tx := mixTx(r)
			if size+len(tx) > 1_000_000-80-3 {
				break
			}
			txs = append(txs, tx)
			size += len(tx)
		}
		block := make([]byte, 80, 80+3+size)
		block[0] = 0x04 // version 0x20000000-ish; btcd does not check
		fillRand(r, block[4:76])
		block = wire.AppendVarInt(block, uint64(len(txs)))
		for _, tx := range txs {
			block = append(block, tx...)
		}
		stream = wire.AppendFrame(stream, wire.Mainnet.Magic, wire.CmdBlock, block)
	}
	return frameStream("block", wire.Mainnet.Magic, stream)
}

// mix is the mainnet-like mix of the package documentation, in cycles of
// 1,000 messages in random order, up to about corpusSize bytes.
func mix() (*corpus, error) {
	r := newRand("mix")
	kinds := []struct {
		n   int
		gen func() wire.Message
	}{
		{430, func() wire.Message { return &wire.Inv{InvList: invList(r, 1+r.IntN(20))} }},
		{430, func() wire.Message { return &wire.Raw{Cmd: wire.CmdTx, Payload: mixTx(r)} }},
		{112, func() wire.Message { return &wire.GetData{InvList: invList(r, 1+r.IntN(10))} }},
		{10, func() wire.Message { return addrV2Msg(r, 1+r.IntN(10)) }},
		{6, func() wire.Message { return &wire.Ping{Nonce: r.Uint64(), HasNonce: true} }},
		{6, func() wire.Message { return &wire.Pong{Nonce: r.Uint64()} }},
		{5, func() wire.Message {
			h := make([]byte, 1+80+1) // one header, then its (empty) tx count
			h[0] = 1
			fillRand(r, h[1:81])
			return &wire.Raw{Cmd: wire.CmdHeaders, Payload: h}
		}},
		{1, func() wire.Message { return &wire.FeeFilter{FeeRate: 1000 + r.Int64N(10_000)} }},
	}
	var cycle []int
	for k, kind := range kinds {
		for range kind.n {
			cycle = append(cycle, k)
		}
	}
	if len(cycle) != 1000 {
		return nil, fmt.Errorf("mix: cycle of %d messages, want 1000", len(cycle))
	}
	var stream []byte
	for len(stream) < corpusSize {
		r.Shuffle(len(cycle), func(i, j int) { cycle[i], cycle[j] = cycle[j], cycle[i] })
		for _, k := range cycle {
			stream = wire.AppendMessage(stream, wire.Mainnet.Magic, kinds[k].gen())
		}
	}
	return frameStream("mix", wire.Mainnet.Magic, stream)
}

// recorded repeats the recorded btcd stream up to about corpusSize bytes.
func recorded() (*corpus, error) {
	rec, err := os.ReadFile(recordedFile)
	if err != nil {
		return nil, err
	}
	if len(rec) == 0 {
		return nil, fmt.Errorf("%s is empty", recordedFile)
	}
	var stream []byte
	for len(stream) < corpusSize {
		stream = append(stream, rec...)
	}
	return frameStream("recorded", wire.Regtest.Magic, stream)
}
