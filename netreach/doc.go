// Package netreach reaches Bitcoin peers on every BIP155 network: IPv4 and
// IPv6 directly or through a SOCKS5 proxy, Tor v3 through Tor's SOCKS port,
// I2P through a SAM v3.1 bridge, and CJDNS directly when the host has a
// route into fc00::/8.
//
// A Dialer, built from a Config, routes a wire.NetAddrV2: Route says how
// it would be reached (Via) or why it is not dialled (a *NotDialledError
// whose text a crawl record can carry, "tor: no proxy configured",
// "onlynet excludes ipv6"); Dial connects. IP addresses it dials directly go
// through the injected Config.Direct, so the crawler's allowlist check and
// dial recording wrap every direct dial; Config.ProxyDial opens the
// connections to the proxies and the bridge, and nothing else.
//
// # Names are never resolved here
//
// A .onion name goes to the SOCKS5 proxy as a domain name (ATYP 3) and a
// .b32.i2p name to the SAM bridge (NAMING LOOKUP): neither is looked up in
// DNS. With Config.Proxy set (Bitcoin Core's -proxy) every IPv4, IPv6 and
// CJDNS connection goes through the proxy too, and DialName sends a host
// name to it as a name: nothing is dialled directly.
//
// # Tor
//
// SOCKS5 (RFC 1928) CONNECT with username/password authentication (RFC
// 1929): each connection offers fresh random credentials (RandomCredentials),
// so Tor, which isolates streams by SOCKS credentials, puts each on its own
// circuit, as Bitcoin Core's -proxyrandomize does. Config.SharedCredentials
// turns that off. Every reply code has a sentinel (ErrSOCKSHostUnreachable,
// ErrSOCKSTTLExpired, …, and Tor's onion-service codes 0xF0–0xF7 of proposal
// 304, sent when the SocksPort has ExtendedErrors), wrapped in a *SOCKSError
// whose message starts with it: "socks: host unreachable (0x4) connecting
// to ….onion:8333 via 127.0.0.1:9050".
//
// # I2P
//
// SAM v3.1 as Bitcoin Core's i2p.cpp speaks it: HELLO VERSION MIN=3.1
// MAX=3.1; one transient session per SAM client (SESSION CREATE STYLE=STREAM
// DESTINATION=TRANSIENT SIGNATURE_TYPE=7), kept on its own control
// connection; per stream a new connection with HELLO, NAMING LOOKUP
// NAME=….b32.i2p (the destination answered must hash to the name) and
// STREAM CONNECT ID=… DESTINATION=… SILENT=false. SAM 3.1 has no ports, so
// only port 0 is dialled (BIP155). When the bridge closes the control
// connection the session is made again on the next Dial; when it answers
// INVALID_ID the session is made again and the connect tried once more.
// RESULT= codes map to sentinels (ErrSAMCantReachPeer, ErrSAMTimeout, …) in
// a *SAMError.
//
// # Limits and lifetimes
//
// Every exchange with a proxy or a bridge obeys the ctx passed to Dial (its
// deadline, and its end); the connection returned has no deadline set. A
// SAM reply line is at most MaxSAMLine bytes; a SOCKS domain name at most
// MaxSOCKSDomain. Dialer.Close ends the I2P session and its goroutine.
package netreach
