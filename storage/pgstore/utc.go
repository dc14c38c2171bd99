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
		// v is addressable: it is reached from a pointer, or is a map
		// element's copy.
		if t := v.Addr().Interface().(*time.Time); t.Location() != time.UTC {
			*t = t.UTC()
		}
		return
	}
	p := planOf(v.Type())
	if !p.holds {
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			toUTC(v.Elem())
		}
	case reflect.Struct:
		for _, i := range p.fields {
			toUTC(v.Field(i))
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

// timePlan is what toUTC knows of a type: whether a value of it can hold
// a time.Time where toUTC reaches it, and for a struct, which of its
// fields can.
type timePlan struct {
	holds  bool
	fields []int
}

// timePlans caches the plans, by reflect.Type.
var timePlans sync.Map

func planOf(t reflect.Type) *timePlan {
	if p, ok := timePlans.Load(t); ok {
		return p.(*timePlan)
	}
	p := &timePlan{}
	if t.Kind() == reflect.Struct {
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() && holdsTime(f.Type, map[reflect.Type]bool{t: true}) {
				p.fields = append(p.fields, i)
			}
		}
		p.holds = len(p.fields) > 0
	} else {
		p.holds = holdsTime(t, map[reflect.Type]bool{})
	}
	timePlans.Store(t, p)
	return p
}

// holdsTime reports whether a value of type t can hold a time.Time in an
// exported field, an element or a pointer's target, at any depth; seen
// holds the types being looked at, so that a type that holds itself ends
// the search.
func holdsTime(t reflect.Type, seen map[reflect.Type]bool) bool {
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
			if f := t.Field(i); f.IsExported() && holdsTime(f.Type, seen) {
				return true
			}
		}
	case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
		return holdsTime(t.Elem(), seen)
	}
	return false
}
