package monitor

import (
	"math"
	"time"
)

// Windows are the five uptime windows (the seeders' 2H, 8H, 1D, 1W, 1M),
// in the order of Uptime's fields and of the seeder dump's columns.
var Windows = [5]time.Duration{
	2 * time.Hour, 8 * time.Hour, 24 * time.Hour, 7 * 24 * time.Hour, 30 * 24 * time.Hour,
}

// WindowNames name Windows in JSON and CSV.
var WindowNames = [5]string{"2h", "8h", "1d", "7d", "30d"}

// FirstAge is the age given to a node's first observation, as the seeder's
// MIN_RETRY (1,000 s): a node seen once is not scored 100% at once.
const FirstAge = 1000 * time.Second

// Stat is one exponentially decayed score (the seeder's CAddrStat).
// Reliability is the decayed fraction of time the node was reachable (the
// uptime the seeders report, 0 to 1), Weight the decayed total weight of the
// observations (it approaches 1 as evidence accumulates), Count the decayed
// number of observations.
type Stat struct {
	Weight, Count, Reliability float64
}

// Update adds one observation made age after the previous one: with
// f = exp(-age/tau), Reliability = Reliability*f + (good ? 1-f : 0),
// Count = Count*f + 1, Weight = Weight*f + (1-f).
func (s *Stat) Update(good bool, age, tau time.Duration) {
	f := math.Exp(-age.Seconds() / tau.Seconds())
	s.Reliability *= f
	if good {
		s.Reliability += 1 - f
	}
	s.Count = s.Count*f + 1
	s.Weight = s.Weight*f + (1 - f)
}

// Uptime is a node's five scores, and what the seeder keeps besides them.
type Uptime struct {
	Stats [5]Stat
	// LastTry and LastSuccess are the times of the last observation and
	// of the last reachable one (zero: never).
	LastTry, LastSuccess time.Time
	// Total and Success count observations and reachable ones.
	Total, Success int
}

// Observe records an observation at t. An observation older than LastTry
// (a clock step, a re-check racing a crawl) counts with age 0.
func (u *Uptime) Observe(good bool, t time.Time) {
	age := FirstAge
	if !u.LastTry.IsZero() {
		age = max(t.Sub(u.LastTry), 0)
	}
	if t.After(u.LastTry) {
		u.LastTry = t
	}
	u.Total++
	if good {
		u.Success++
		if t.After(u.LastSuccess) {
			u.LastSuccess = t
		}
	}
	for i, tau := range Windows {
		u.Stats[i].Update(good, age, tau)
	}
}

// Percent returns the five uptimes in percent (Reliability × 100).
func (u *Uptime) Percent() [5]float64 {
	var p [5]float64
	for i, s := range u.Stats {
		p[i] = s.Reliability * 100
	}
	return p
}

// Good applies the seeder's IsGood thresholds to the scores: a node tried at
// most three times and reachable at least half of them, or one whose
// reliability over a window is high enough with enough observations
// (2h: > 0.85 and count > 2; 8h: > 0.70, > 4; 1d: > 0.55, > 8; 7d: > 0.45,
// > 16; 30d: > 0.35, > 32). The checks of port, services, version and
// height are the caller's (see SeedGood).
func (u *Uptime) Good() bool {
	if u.Total <= 3 && u.Success*2 >= u.Total && u.Total > 0 {
		return true
	}
	limits := [5]struct{ rel, count float64 }{{0.85, 2}, {0.70, 4}, {0.55, 8}, {0.45, 16}, {0.35, 32}}
	for i, l := range limits {
		if u.Stats[i].Reliability > l.rel && u.Stats[i].Count > l.count {
			return true
		}
	}
	return false
}

// Settled reports whether the scores are certain enough that the crawls
// alone keep them up: the node is Good with a 2-hour count above 4, or it
// has been unreachable long enough for the seeder to ignore it
// (GetIgnoreTime: reliability - weight + 1 below 0.08 over 8 hours with
// more than 2 observations). A node that is neither is re-checked between
// crawls.
func (u *Uptime) Settled() bool {
	if u.Good() && u.Stats[0].Count > 4 {
		return true
	}
	s := u.Stats[1]
	return s.Reliability-s.Weight+1 < 0.08 && s.Count > 2
}

// SeedGood is the seeder's IsGood in full: the port is the network's
// default, NODE_NETWORK is set, the protocol version is at least 70001
// (when known), and the scores are Good. (The seeder also wants a routable
// address; the crawler's allowlist already refuses bogons.)
func SeedGood(u *Uptime, port, defaultPort uint16, services uint64, protocol int32) bool {
	if port != defaultPort || services&1 == 0 {
		return false
	}
	if protocol != 0 && protocol < 70001 {
		return false
	}
	return u.Good()
}
