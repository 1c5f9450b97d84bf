package monitor

import (
	"math"
	"testing"
	"time"
)

func TestStatUpdateMatchesTheSeeder(t *testing.T) {
	// By hand from CAddrStat::Update with age 600 s, tau 7200 s.
	var s Stat
	f := math.Exp(-600.0 / 7200)
	s.Update(true, 600*time.Second, 2*time.Hour)
	s.Update(false, 600*time.Second, 2*time.Hour)
	wantRel := (1 - f) * f
	wantCount := 1*f + 1
	wantWeight := (1-f)*f + (1 - f)
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"reliability", s.Reliability, wantRel}, {"count", s.Count, wantCount}, {"weight", s.Weight, wantWeight}} {
		if math.Abs(c.got-c.want) > 1e-12 {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestUptimeConverges(t *testing.T) {
	tests := []struct {
		name     string
		up       func(i int) bool
		want2h   float64 // after 3 days of 10-minute observations
		want30d  float64
		wantGood bool
	}{
		{name: "always up", up: func(int) bool { return true }, want2h: 100, want30d: 100 * (1 - math.Exp(-3.0/30)), wantGood: true},
		{name: "always down", up: func(int) bool { return false }, want2h: 0, want30d: 0, wantGood: false},
		{name: "up then down for the last 4 hours", up: func(i int) bool { return i < 432-24 }, want2h: 100 * math.Exp(-2), wantGood: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var u Uptime
			t0 := time.Unix(1_700_000_000, 0)
			for i := range 432 { // 3 days
				u.Observe(tt.up(i), t0.Add(time.Duration(i)*10*time.Minute))
			}
			p := u.Percent()
			if math.Abs(p[0]-tt.want2h) > 0.5 {
				t.Errorf("2h uptime = %.2f%%, want %.2f%%", p[0], tt.want2h)
			}
			if tt.want30d > 0 && math.Abs(p[4]-tt.want30d) > 1 {
				t.Errorf("30d uptime = %.2f%%, want about %.2f%%", p[4], tt.want30d)
			}
			if got := u.Good(); got != tt.wantGood {
				t.Errorf("Good() = %v, want %v (stats %+v)", got, tt.wantGood, u.Stats)
			}
			if !u.Settled() {
				t.Errorf("after 3 days of observations the node should be settled: %+v", u.Stats)
			}
		})
	}
}

func TestFirstObservationIsNotFullUptime(t *testing.T) {
	var u Uptime
	u.Observe(true, time.Unix(1_700_000_000, 0))
	p := u.Percent()
	if p[0] <= 0 || p[0] >= 50 {
		t.Errorf("2h uptime after one good observation = %.2f%%, want a small positive value (age %v)", p[0], FirstAge)
	}
	if !u.Good() || u.Settled() {
		t.Errorf("one good try: Good %v (want true), Settled %v (want false)", u.Good(), u.Settled())
	}
	// A clock step backwards counts with age 0: nothing decays, nothing is added.
	before := u.Stats
	u.Observe(true, time.Unix(1_600_000_000, 0))
	if u.Stats[0].Reliability != before[0].Reliability {
		t.Errorf("an observation in the past changed the reliability: %v -> %v", before[0], u.Stats[0])
	}
}

func TestSeedGood(t *testing.T) {
	var u Uptime
	u.Observe(true, time.Unix(1_700_000_000, 0))
	tests := []struct {
		name     string
		port     uint16
		services uint64
		protocol int32
		want     bool
	}{
		{"good", 8333, 9, 70016, true},
		{"other port", 8334, 9, 70016, false},
		{"no NODE_NETWORK", 8333, 8, 70016, false},
		{"old protocol", 8333, 9, 60002, false},
	}
	for _, tt := range tests {
		if got := SeedGood(&u, tt.port, 8333, tt.services, tt.protocol); got != tt.want {
			t.Errorf("%s: SeedGood = %v, want %v", tt.name, got, tt.want)
		}
	}
}
