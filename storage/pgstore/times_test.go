package pgstore_test

import (
	"context"
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/memstore"
)

// beijing is a zone that is not UTC, as a writer's times may be in.
var beijing = time.FixedZone("CST", 8*3600)

// fillAll sets every exported field v holds, at any depth, to a value
// that is not zero and differs from field to field: every time in
// beijing, with nanoseconds, every Money in CNY.
func fillAll(t *testing.T, v reflect.Value, n *int) {
	*n++
	switch v.Type() {
	case reflect.TypeFor[escrow.Money]():
		v.Set(reflect.ValueOf(escrow.RestoreMoney(int64(*n), escrow.CNY)))
		return
	case reflect.TypeFor[time.Time]():
		v.Set(reflect.ValueOf(start.Add(time.Duration(*n)*time.Hour + time.Duration(*n)).In(beijing)))
		return
	}
	if m, ok := v.Addr().Interface().(encoding.TextMarshaler); ok && (v.CanInt() || v.CanUint()) {
		// An enumeration: the first value it can write.
		for i := range 16 {
			if v.CanInt() {
				v.SetInt(int64(i))
			} else {
				v.SetUint(uint64(i))
			}
			if _, err := m.MarshalText(); err == nil {
				return
			}
		}
		t.Fatalf("fillAll: no value of %s marshals", v.Type())
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d", *n))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(*n % 100))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(*n % 100))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(*n))
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fillAll(t, v.Field(i), n)
			}
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		fillAll(t, v.Index(0), n)
		fillAll(t, v.Index(1), n)
	case reflect.Array:
		for i := range v.Len() {
			fillAll(t, v.Index(i), n)
		}
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fillAll(t, k, n)
		fillAll(t, e, n)
		v.SetMapIndex(k, e)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fillAll(t, v.Elem(), n)
	default:
		t.Fatalf("fillAll cannot set a %s", v.Type())
	}
}

// timesIn lists every time v holds, with its path, in field order.
func timesIn(path string, v reflect.Value, out *[]struct {
	path string
	at   time.Time
}) {
	if v.Type() == reflect.TypeFor[time.Time]() {
		*out = append(*out, struct {
			path string
			at   time.Time
		}{path, v.Interface().(time.Time)})
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() {
				timesIn(path+"."+f.Name, v.Field(i), out)
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			timesIn(fmt.Sprintf("%s[%d]", path, i), v.Index(i), out)
		}
	case reflect.Pointer:
		if !v.IsNil() {
			timesIn(path, v.Elem(), out)
		}
	case reflect.Map:
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
		for _, k := range keys {
			timesIn(fmt.Sprintf("%s[%v]", path, k), v.MapIndex(k), out)
		}
	}
}

// sameTimesInUTC checks that got holds the times of put, each the same
// instant and in UTC.
func sameTimesInUTC(t *testing.T, what string, put, got any) {
	t.Helper()
	var want, have []struct {
		path string
		at   time.Time
	}
	timesIn(what, reflect.ValueOf(put), &want)
	timesIn(what, reflect.ValueOf(got), &have)
	if len(want) == 0 || len(have) != len(want) {
		t.Fatalf("%s: %d times put, %d read back", what, len(want), len(have))
	}
	for i, w := range want {
		h := have[i]
		if h.path != w.path || !h.at.Equal(w.at) {
			t.Errorf("%s = %v, put %s = %v", h.path, h.at, w.path, w.at)
		}
		if h.at.Location() != time.UTC {
			t.Errorf("%s = %v, not in UTC", h.path, h.at)
		}
	}
}

// TestTimesReadBackInUTC: every time of every record kind kept in a doc
// column (escrows, ratings, aggregates), at any depth, reads back as the
// same instant in UTC, as the columns' times do, whether the read goes
// to the database (View) or to a row the store kept (Update).
func TestTimesReadBackInUTC(t *testing.T) {
	ctx := context.Background()
	s := open(t, newSchema(t))
	defer s.Close()
	n := 0
	var e escrow.Escrow
	fillAll(t, reflect.ValueOf(&e).Elem(), &n)
	var r escrow.Rating
	fillAll(t, reflect.ValueOf(&r).Elem(), &n)
	var a escrow.Aggregate
	fillAll(t, reflect.ValueOf(&a).Elem(), &n)
	if err := s.Update(ctx, func(tx escrow.Tx) error {
		return errors.Join(tx.PutEscrow(e), tx.PutRating(r), tx.PutAggregate(a))
	}); err != nil {
		t.Fatal(err)
	}
	for _, read := range []struct {
		name string
		run  func(context.Context, func(escrow.Tx) error) error
	}{{"View", s.View}, {"Update", s.Update}} {
		err := read.run(ctx, func(tx escrow.Tx) error {
			ge, err := tx.Escrow(e.ID)
			if err != nil {
				return err
			}
			gr, err := tx.Rating(r.Escrow, r.Rater)
			if err != nil {
				return err
			}
			ga, err := tx.Aggregate(a.Party, a.Role)
			if err != nil {
				return err
			}
			sameTimesInUTC(t, read.name+": Escrow", e, ge)
			sameTimesInUTC(t, read.name+": Rating", r, gr)
			sameTimesInUTC(t, read.name+": Aggregate", a, ga)
			return nil
		})
		if err != nil {
			t.Fatalf("%s: %v", read.name, err)
		}
	}
}

// TestDocTimePastJSON: a time a doc cannot hold (a year past 9999, or
// before 0) is refused with ErrInvalidArgument, and nothing is written.
func TestDocTimePastJSON(t *testing.T) {
	s := open(t, newSchema(t))
	defer s.Close()
	far := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	refusedWrites(t, s, map[string]func(tx escrow.Tx) error{
		"escrow": func(tx escrow.Tx) error {
			return tx.PutEscrow(escrow.Escrow{Terms: escrow.Terms{ID: "m", Buyer: "ann", Seller: "bob",
				Price: cnyUnits(100)}, State: escrow.AwaitingPayment, CreatedAt: start, PaidAt: far, Version: 1})
		},
		"rating": func(tx escrow.Tx) error {
			return tx.PutRating(escrow.Rating{Escrow: "m", Rater: "ann", Ratee: "bob", At: start, RevisedAt: far.AddDate(-20000, 0, 0)})
		},
		"aggregate": func(tx escrow.Tx) error {
			return tx.PutAggregate(escrow.Aggregate{Party: "bob", Role: escrow.Seller, BetaAt: far})
		},
	})
}

// TestQueryTimesPastRange: a query bounded by a time outside
// PostgreSQL's range (4714 BC to 294276 AD) answers as memstore does,
// since no stored time lies outside it, and spoils nothing: in one
// Update that asks each such query, a write afterwards commits.
func TestQueryTimesPastRange(t *testing.T) {
	ctx := context.Background()
	pg := open(t, newSchema(t))
	defer pg.Close()
	mem := memstore.New()
	late, early := time.Date(300000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-5000, 1, 1, 0, 0, 0, 0, time.UTC)
	seed := func(tx escrow.Tx) error {
		var errs []error
		for i := range 3 {
			id := fmt.Sprintf("e%d", i)
			at := start.Add(time.Duration(i) * time.Hour)
			errs = append(errs,
				tx.PutEscrow(escrow.Escrow{Terms: escrow.Terms{ID: id, Buyer: "ann", Seller: "bob", Price: cnyUnits(100)},
					State: escrow.AwaitingPayment, CreatedAt: at, DueAt: at.Add(time.Hour), Version: 1}),
				tx.PutIdempotency(escrow.IdempotencyRecord{Key: "k" + id, Request: "r", At: at}),
				tx.PutRating(escrow.Rating{Escrow: id, Rater: "ann", Ratee: "bob", RateeRole: escrow.Seller,
					Score: escrow.Positive, At: at}))
		}
		return errors.Join(errs...)
	}
	// answers asks each query and then writes an account, returning nil
	// whatever the queries said: what they said is in the answers.
	answers := func(s escrow.Storage) (string, error) {
		var out []string
		err := s.Update(ctx, func(tx escrow.Tx) error {
			say := func(what string, v any, err error) {
				out = append(out, fmt.Sprintf("%s: %v %v", what, v, err))
			}
			for _, at := range []time.Time{late, early} {
				ids, err := tx.DueEscrows(at, 10)
				say(fmt.Sprintf("DueEscrows(%d)", at.Year()), ids, err)
				keys, err := tx.IdempotenciesUntil(at, 10)
				say(fmt.Sprintf("IdempotenciesUntil(%d)", at.Year()), keys, err)
				es, err := tx.PartyEscrows(escrow.PartyQuery{Party: "ann", Role: escrow.Buyer | escrow.Seller,
					After: escrow.EscrowPos{CreatedAt: at, ID: "e"}, Limit: 10})
				ids = nil
				for _, e := range es {
					ids = append(ids, e.ID)
				}
				say(fmt.Sprintf("PartyEscrows(after %d)", at.Year()), ids, err)
				var rated []string
				err = tx.RatingsOf("bob", escrow.RatingPos{At: at, Escrow: "e", Rater: "ann"}, func(r escrow.Rating) error {
					rated = append(rated, r.Escrow)
					return nil
				})
				say(fmt.Sprintf("RatingsOf(after %d)", at.Year()), rated, err)
			}
			_ = tx.PutAccount(escrow.Account{ID: "after", CreatedAt: start})
			return nil
		})
		return strings.Join(out, "\n"), err
	}
	var want string
	for _, s := range []escrow.Storage{mem, pg} {
		if err := s.Update(ctx, seed); err != nil {
			t.Fatal(err)
		}
		got, err := answers(s)
		if err != nil {
			t.Errorf("%T: the Update that asked: %v", s, err)
		}
		if want == "" {
			want = got
		} else if got != want {
			t.Errorf("pgstore answered\n%s\nmemstore\n%s", got, want)
		}
		err = s.View(ctx, func(tx escrow.Tx) error {
			_, err := tx.Account("after")
			return err
		})
		if err != nil {
			t.Errorf("%T: the write after the queries: %v", s, err)
		}
	}
}
