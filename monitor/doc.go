// Package monitor keeps the Bitcoin network over time: it runs crawl after
// crawl (crawler.Crawler), stores each crawl as a snapshot in a SQL database
// (SQLite in one file, or PostgreSQL shared by monitors in several places,
// each with its own vantage name), scores every node's uptime over 2 hours,
// 8 hours, a day, a week and a month the way the DNS seeders do, re-checks
// known reachable nodes between crawls, and serves it all as a versioned JSON
// API with CSV, JSON-lines and seeder-dump exports. `btcpipe monitor` is its
// command.
//
// # Storage
//
// A node's state (outcome, protocol, user agent, services, relay,
// transport) is stored as runs: one row per stretch of consecutive
// snapshots in which the state did not change, extended in place while it
// does not (and cut after MaxRunSnapshots, so latency and height keep a
// resolution of a few hours). 30 days of 10-minute snapshots of 20,000
// unchanging nodes are then about 2.4 million rows, not 86 million.
// Per-node scores (first and last seen, the five uptime statistics, the
// last values seen) live in node_stats, one row per node and vantage.
//
// Each snapshot is written in one transaction. The snapshot row is created
// with status "running" when its crawl starts; the transaction that stores
// its nodes also sets it "complete". A monitor killed in between leaves the
// row "running", and the next start of the same vantage marks it
// "interrupted" and goes on.
//
// # Uptime
//
// See Stat: each observation (a crawl or a re-check) decays the previous
// statistics by exp(-age/tau), age being the time since the previous
// observation and tau the window, and adds the new one with weight
// 1-exp(-age/tau), exactly as sipa's bitcoin-seeder (CAddrStat::Update).
package monitor
