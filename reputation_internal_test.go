package escrow

import (
	"math/rand/v2"
	"testing"
	"time"
	_ "time/tzdata" // the zones below, whatever the machine has installed
)

// TestMonthOfCache checks the month kept by monthOf against formatting
// every time afresh, in zones whose clocks jump at midnight as well as at
// other hours, walking forwards and jumping about.
func TestMonthOfCache(t *testing.T) {
	for _, zone := range []string{"UTC", "Asia/Shanghai", "America/Sao_Paulo", "America/Santiago", "Europe/London", "Pacific/Apia"} {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatal(err)
		}
		l := &Ledger{rep: policy{loc: loc}}
		rng := rand.New(rand.NewPCG(1, 2))
		start := time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC)
		at := start
		for i := range 200000 {
			if i%50 == 0 {
				at = start.Add(time.Duration(rng.Int64N(int64(12 * 365 * 24 * time.Hour))))
			} else {
				at = at.Add(time.Duration(rng.Int64N(int64(3 * time.Hour))))
			}
			if got, want := l.monthOf(at), at.In(loc).Format("2006-01"); got != want {
				t.Fatalf("%s: monthOf(%s) = %s, want %s", zone, at.In(loc), got, want)
			}
		}
	}
}
