package pgstore

import (
	"reflect"
	"sync"
	"time"
)

// The times of a record that have no column of their own (an escrow's
// DueAt, PaidAt and those of its refunds and disputes, a rating's
// RevisedAt, an aggregate's BetaAt, …) are kept in its JSONB doc as RFC
// 3339 text, with the offset the writer's time had, and JSON gives them
// back in that offset. The columns give times back in UTC, and so must
// the docs: every doc a read decodes goes through inUTC.

// inUTC sets every time.Time that p, a pointer, holds (in exported
// fields, slices, arrays, maps and pointers, at any depth) to the same
// instant in UTC.
func inUTC(p any) {
	toUTC(reflect.ValueOf(p).Elem())
}

var timeType = reflect.TypeFor[time.Time]()

func toUTC(v reflect.Value) {
	if v.Type() == timeType {
		if t := v.Interface().(time.Time); t.Location() != time.UTC {
			v.Set(reflect.ValueOf(t.UTC()))
		}
		return
	}
	if !holdsTime(v.Type()) {
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			toUTC(v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				toUTC(v.Field(i))
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			toUTC(v.Index(i))
		}
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(iter.Value())
			toUTC(e)
			v.SetMapIndex(iter.Key(), e)
		}
	}
}

// timeHolders caches holdsTime's answers, by reflect.Type.
var timeHolders sync.Map

// holdsTime reports whether a value of type t can hold a time.Time
// where toUTC reaches it.
func holdsTime(t reflect.Type) bool {
	if v, ok := timeHolders.Load(t); ok {
		return v.(bool)
	}
	holds := scanForTime(t, map[reflect.Type]bool{})
	timeHolders.Store(t, holds)
	return holds
}

// scanForTime is holdsTime, uncached; seen holds the types being looked
// at, so that a type that holds itself ends the search.
func scanForTime(t reflect.Type, seen map[reflect.Type]bool) bool {
	if t == timeType {
		return true
	}
	if seen[t] {
		return false
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Struct:
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() && scanForTime(f.Type, seen) {
				return true
			}
		}
	case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
		return scanForTime(t.Elem(), seen)
	}
	return false
}
