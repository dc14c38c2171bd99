package storagetest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"time"

	"github.com/escrowkit/escrow"
)

// A dump has a form of its own, not the records' JSON forms: each struct
// is an object of its exported fields under their Go names, in order, with
// embedded structs' fields in line; numbers, enumerations and durations
// are plain numbers, a State is its Go name, a time is RFC 3339 with
// nanoseconds (the zero time too), an amount is {"amount","currency"} (or
// null for the zero Money), bytes are base64 and a map is an object in
// key order. It is what encoding/json
// made of the records before they had JSON forms, and it stays so: a dump
// compares with one taken by an earlier release, as filestore's tests of
// old stores do, whatever the records' wire forms become.

var (
	timeType  = reflect.TypeFor[time.Time]()
	moneyType = reflect.TypeFor[escrow.Money]()
	stateType = reflect.TypeFor[escrow.State]()
	bytesType = reflect.TypeFor[[]byte]()
)

// appendPlain appends v in the dump's form.
func appendPlain(b []byte, v reflect.Value) ([]byte, error) {
	switch v.Type() {
	case timeType:
		return append(v.Interface().(time.Time).AppendFormat(append(b, '"'), time.RFC3339Nano), '"'), nil
	case moneyType:
		m := v.Interface().(escrow.Money)
		c := m.Currency()
		if c == (escrow.Currency{}) {
			return append(b, "null"...), nil
		}
		b = append(b, `{"amount":`...)
		b = appendString(b, m.Decimal().StringFixed(int32(c.Minor)))
		b = append(b, `,"currency":`...)
		return append(appendString(b, c.Code), '}'), nil
	case stateType:
		s := v.Interface().(escrow.State)
		if s == 0 {
			return append(b, `""`...), nil
		}
		return appendString(b, s.String()), nil
	case bytesType:
		if v.IsNil() {
			return append(b, "null"...), nil
		}
		return append(base64.StdEncoding.AppendEncode(append(b, '"'), v.Bytes()), '"'), nil
	}
	switch v.Kind() {
	case reflect.Bool:
		return strconv.AppendBool(b, v.Bool()), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.AppendInt(b, v.Int(), 10), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.AppendUint(b, v.Uint(), 10), nil
	case reflect.Float32, reflect.Float64:
		f, err := json.Marshal(v.Float())
		return append(b, f...), err
	case reflect.String:
		return appendString(b, v.String()), nil
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return append(b, "null"...), nil
		}
		return appendPlain(b, v.Elem())
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for i := range v.Len() {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendPlain(b, v.Index(i)); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case reflect.Map:
		if v.IsNil() {
			return append(b, "null"...), nil
		}
		keys := v.MapKeys()
		slices.SortFunc(keys, func(x, y reflect.Value) int {
			if x.String() < y.String() {
				return -1
			}
			return 1
		})
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(appendString(b, k.String()), ':')
			var err error
			if b, err = appendPlain(b, v.MapIndex(k)); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case reflect.Struct:
		first := true
		b, err := appendFields(append(b, '{'), v, &first)
		if err != nil {
			return nil, err
		}
		return append(b, '}'), nil
	}
	return nil, fmt.Errorf("storagetest: cannot dump a %s", v.Type())
}

// appendFields appends the exported fields of struct v, with those of the
// structs it embeds in line; first says whether none came before.
func appendFields(b []byte, v reflect.Value, first *bool) ([]byte, error) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		var err error
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			if b, err = appendFields(b, v.Field(i), first); err != nil {
				return nil, err
			}
			continue
		}
		if !*first {
			b = append(b, ',')
		}
		*first = false
		b = append(appendString(b, f.Name), ':')
		if b, err = appendPlain(b, v.Field(i)); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// appendString appends s as a JSON string, escaped as encoding/json
// escapes it.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
