package memstore

import (
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/escrowkit/escrow"
)

// fill sets every field v holds, at any depth, to a value that is not
// zero and differs from field to field, so that a field that pack or
// unpack leaves out shows in a comparison.
func fill(t *testing.T, v reflect.Value, n *int) {
	*n++
	switch v.Type() {
	case reflect.TypeFor[escrow.Money]():
		v.Set(reflect.ValueOf(escrow.RestoreMoney(int64(*n), escrow.CNY)))
		return
	case reflect.TypeFor[time.Time]():
		v.Set(reflect.ValueOf(time.Unix(int64(*n)*1000, 0).UTC()))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString("s" + reflect.ValueOf(*n).String())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(*n))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(*n % 200))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(*n))
	case reflect.Struct:
		for i := range v.NumField() {
			if !v.Type().Field(i).IsExported() {
				t.Fatalf("%s.%s: an unexported field fill cannot set", v.Type(), v.Type().Field(i).Name)
			}
			fill(t, v.Field(i), n)
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		fill(t, v.Index(0), n)
		fill(t, v.Index(1), n)
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(t, k, n)
		fill(t, e, n)
		v.SetMapIndex(k, e)
	default:
		t.Fatalf("fill cannot set a %s", v.Type())
	}
}

// TestStoredRoundTrip checks that an escrow with every field set reads
// back whole from the form the table keeps, and that what the caller
// holds is a copy either way.
func TestStoredRoundTrip(t *testing.T) {
	var e escrow.Escrow
	n := 0
	fill(t, reflect.ValueOf(&e).Elem(), &n)
	s := pack(&e, nil)
	if s.rare == nil || s.shared == nil {
		t.Fatal("a full escrow packed without its rare or shared parts")
	}
	want := unpack(&s)
	if diff := cmp.Diff(e, want); diff != "" {
		t.Fatalf("escrow changed through the table's form (-put +got):\n%s", diff)
	}
	// Changing what either side holds changes nothing in the table.
	e.Milestones[0].Name, e.Shipments[0].Tracking, e.Evidence[0].Note = "x", "x", "x"
	e.Metadata["new"] = "x"
	got := unpack(&s)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("the caller's escrow shares memory with the table (-want +got):\n%s", diff)
	}
	got.Milestones[1].Name = "y"
	if diff := cmp.Diff(want, unpack(&s)); diff != "" {
		t.Fatalf("a read escrow shares memory with the table (-want +got):\n%s", diff)
	}
}

// TestStoredCommonTrade checks that a trade that sets none of the rare
// fields keeps no rare part, shares its timers and fee terms with the
// escrow stored before it, and reads back with its empty and nil slices
// and maps as they were.
func TestStoredCommonTrade(t *testing.T) {
	e := escrow.Escrow{
		Terms: escrow.Terms{ID: "e1", Buyer: "b", Seller: "s", Price: escrow.RestoreMoney(100, escrow.CNY),
			Timers: escrow.DefaultTimers()},
		Fee:   escrow.FeeTerms{RatePPM: 10000},
		State: escrow.AwaitingPayment, Version: 1, CreatedAt: time.Unix(1, 0).UTC(),
	}
	first := pack(&e, nil)
	if first.rare != nil {
		t.Fatalf("a common trade keeps a rare part: %+v", *first.rare)
	}
	e.ID = "e2"
	second := pack(&e, first.shared)
	if second.shared != first.shared {
		t.Fatal("two escrows with the same timers and fee terms do not share them")
	}
	e.Fee.RatePPM = 20000
	if third := pack(&e, first.shared); third.shared == first.shared || unpack(&third).Fee.RatePPM != 20000 {
		t.Fatal("an escrow with other fee terms shares the last's")
	}

	e.Metadata, e.Milestones = map[string]string{}, []escrow.Milestone{}
	s := pack(&e, nil)
	got := unpack(&s)
	if got.Metadata == nil || got.Milestones == nil || got.Shipments != nil {
		t.Fatalf("empty and nil read back as %#v, %#v, %#v", got.Metadata, got.Milestones, got.Shipments)
	}
}
