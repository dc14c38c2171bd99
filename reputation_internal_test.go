package escrow

import (
	"testing"
	"time"
	_ "time/tzdata" // the zones below, whatever the machine has installed
)

// TestCalendar checks the month and day that monthOf and dayOf give an
// instant in zones whose clocks jump by half an hour or across the date
// line, on either side of local midnight.
func TestCalendar(t *testing.T) {
	tests := []struct {
		zone, at    string // at in UTC
		date, month string // local
	}{
		{"UTC", "2026-11-30T23:59:59Z", "2026-11-30", "2026-11"},
		{"UTC", "2026-12-01T00:00:00Z", "2026-12-01", "2026-12"},
		{"Asia/Shanghai", "2026-11-30T15:59:59Z", "2026-11-30", "2026-11"},
		{"Asia/Shanghai", "2026-11-30T16:00:00Z", "2026-12-01", "2026-12"},
		{"Australia/Lord_Howe", "2020-01-31T12:59:00Z", "2020-01-31", "2020-01"}, // +11
		{"Australia/Lord_Howe", "2020-01-31T13:00:00Z", "2020-02-01", "2020-02"},
		{"Australia/Lord_Howe", "2020-06-30T13:29:00Z", "2020-06-30", "2020-06"}, // +10:30
		{"Australia/Lord_Howe", "2020-06-30T13:30:00Z", "2020-07-01", "2020-07"},
		// Samoa skipped 30 December 2011.
		{"Pacific/Apia", "2011-12-30T09:59:00Z", "2011-12-29", "2011-12"},
		{"Pacific/Apia", "2011-12-30T10:00:00Z", "2011-12-31", "2011-12"},
	}
	for _, tt := range tests {
		loc, err := time.LoadLocation(tt.zone)
		if err != nil {
			t.Fatal(err)
		}
		l := &Ledger{rep: policy{loc: loc}}
		at, err := time.Parse(time.RFC3339, tt.at)
		if err != nil {
			t.Fatal(err)
		}
		date, err := time.Parse("2006-01-02", tt.date)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := l.dayOf(at), int32(date.Unix()/86400); got != want {
			t.Errorf("%s: dayOf(%s) = %d, want %d (%s)", tt.zone, tt.at, got, want, tt.date)
		}
		if got := l.monthOf(at); got != tt.month {
			t.Errorf("%s: monthOf(%s) = %s, want %s", tt.zone, tt.at, got, tt.month)
		}
	}
}
