package escrow

import (
	"math/rand/v2"
	"testing"
	"time"
	_ "time/tzdata" // the zones below, whatever the machine has installed
)

// TestCalendarSpans checks the month and day that monthOf and dayOf keep
// against working them out afresh, in zones whose clocks jump at midnight,
// by half an hour, or across the date line, walking forwards in small
// steps and jumping about.
func TestCalendarSpans(t *testing.T) {
	zones := []string{"UTC", "Asia/Shanghai", "America/Sao_Paulo", "America/Santiago",
		"America/Havana", "Asia/Beirut", "Europe/London", "Australia/Lord_Howe", "Pacific/Apia"}
	for _, zone := range zones {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatal(err)
		}
		l := &Ledger{rep: policy{loc: loc}}
		rng := rand.New(rand.NewPCG(1, 2))
		start := time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC)
		at := start
		cached := 0
		for i := range 300000 {
			if i%50 == 0 {
				at = start.Add(time.Duration(rng.Int64N(int64(12 * 365 * 24 * time.Hour))))
			} else {
				at = at.Add(time.Duration(rng.Int64N(int64(90 * time.Minute))))
			}
			if l.day.Load().holds(at) {
				cached++
			}
			lt := at.In(loc)
			if got, want := l.monthOf(at), lt.Format("2006-01"); got != want {
				t.Fatalf("%s: monthOf(%s) = %s, want %s", zone, lt, got, want)
			}
			y, m, d := lt.Date()
			if got, want := l.dayOf(at), int32(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix()/86400); got != want {
				t.Fatalf("%s: dayOf(%s) = %d, want %d", zone, lt, got, want)
			}
		}
		// The test must exercise the kept spans, not only the slow path.
		if cached < 200000 {
			t.Errorf("%s: %d of 300,000 days came from the kept span", zone, cached)
		}
	}
}
