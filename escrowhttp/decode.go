package escrowhttp

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/escrowkit/escrow"
)

// This file reads what a request carries: its JSON body, strictly, and
// its query parameters.

// decode reads the request body into v, a pointer to the route's body
// type. An empty body is read as {}. It refuses what is not one JSON
// value, or is one but not an object (null too) (invalid_json); an object
// with two members of one name, at any depth (invalid_json, naming it);
// bytes that are not valid UTF-8, and a string escape that is half of a
// UTF-16 surrogate pair (invalid_json: encoding/json would read either as
// U+FFFD, text the client never sent); a member v has no field for, in
// any object however deep (unknown_field); an amount with other decimal
// places than its currency takes (invalid_amount); and a value of the
// wrong JSON type (invalid_json). A value the ledger's types
// refuse as they decode, such as a negative amount or an unknown state,
// fails with the ledger's error.
func (s *server) decode(c *call, v any) error {
	b, err := io.ReadAll(c.r.Body)
	if err != nil {
		if _, ok := as[*http.MaxBytesError](err); ok {
			return err
		}
		return refuse("invalid_json", "reading the body: %v", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		b = []byte("{}")
	}
	if !utf8.Valid(b) {
		i := invalidUTF8(b)
		a := refuse("invalid_json", "the body is not valid UTF-8, as JSON must be: byte %d is not", i)
		a.details = map[string]any{"offset": i}
		return a
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return refuse("invalid_json", "the body holds more than one JSON value")
	}
	if raw == nil {
		// encoding/json reads null into a struct as nothing at all, so
		// it would pass for {}: a call with every argument left out.
		return refuse("invalid_json", "the body must be a JSON object, not null; send {} or nothing for a call without arguments")
	}
	if i := loneSurrogate(b); i >= 0 {
		a := refuse("invalid_json", "the escape at byte %d is half of a UTF-16 surrogate pair, which is no character", i)
		a.details = map[string]any{"offset": i}
		return a
	}
	// The number a member holds does not matter here, and one past a
	// float64 is refused below, naming its field.
	members := json.NewDecoder(bytes.NewReader(b))
	members.UseNumber()
	if field, err := twice(members, ""); err != nil {
		return jsonError(err)
	} else if field != "" {
		a := refuse("invalid_json", "the body has the member %q twice: which one it means cannot be told", field)
		a.details = map[string]any{"field": field}
		return a
	}
	if err := s.check(raw, reflect.TypeOf(v).Elem(), ""); err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return jsonError(err)
	}
	return nil
}

// twice reads one JSON value from dec and returns the path, as check
// names fields ("price.amount", "milestones[1].name"), of the first member
// of an object whose name, unescaped, that object already has; "" if
// there is none. encoding/json keeps the last of such members without a
// word, while a proxy or a gateway in front of the handler may have read
// the first: {"amount":"1.00","amount":"90.00"} means two amounts.
func twice(dec *json.Decoder, path string) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", err
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			key, err := dec.Token()
			if err != nil {
				return "", err
			}
			name := strings.TrimPrefix(path+"."+key.(string), ".")
			if seen[key.(string)] {
				return name, nil
			}
			seen[key.(string)] = true
			if field, err := twice(dec, name); field != "" || err != nil {
				return field, err
			}
		}
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if field, err := twice(dec, path+"["+strconv.Itoa(i)+"]"); field != "" || err != nil {
				return field, err
			}
		}
	default:
		return "", nil
	}
	_, err = dec.Token() // the closing delimiter
	return "", err
}

// invalidUTF8 returns the offset of the first byte of b that is not part
// of valid UTF-8; len(b) if there is none.
func invalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// loneSurrogate returns the offset of the first \u escape in b, one JSON
// value, that is half of a UTF-16 surrogate pair without its other half;
// -1 if there is none.
func loneSurrogate(b []byte) int {
	in := false // inside a string
	for i := 0; i < len(b); i++ {
		switch {
		case b[i] == '"':
			in = !in
		case b[i] != '\\' || !in:
		case b[i+1] != 'u':
			i++ // an escape of one character, such as \" or \\
		default:
			r := escaped(b[i:])
			if !utf16.IsSurrogate(r) {
				i += 5
				continue
			}
			if bytes.HasPrefix(b[i+6:], []byte(`\u`)) && utf16.DecodeRune(r, escaped(b[i+6:])) != unicode.ReplacementChar {
				i += 11
				continue
			}
			return i
		}
	}
	return -1
}

// escaped returns the code unit of the \uXXXX escape b begins with.
func escaped(b []byte) rune {
	n, _ := strconv.ParseUint(string(b[2:6]), 16, 16)
	return rune(n)
}

// jsonError words an error of encoding/json; an error of the ledger's
// types (a bad amount, an unknown word) is returned as it is.
func jsonError(err error) error {
	if e, ok := as[*json.SyntaxError](err); ok {
		a := refuse("invalid_json", "the body is not valid JSON: %v", e)
		a.details = map[string]any{"offset": e.Offset}
		return a
	}
	if e, ok := as[*json.UnmarshalTypeError](err); ok {
		if e.Field == "" {
			return refuse("invalid_json", "the body must be a JSON object, not %s", article(e.Value))
		}
		if literal, ok := strings.CutPrefix(e.Value, "number "); ok {
			// A number, as the field takes, that its type cannot hold: a
			// fraction or an exponent where an integer is meant, or one
			// out of range. encoding/json calls its kind "number 0.5".
			return numberError(e.Field, e.Type, literal)
		}
		return typeError(e.Field, jsonKind(e.Type), e.Value)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return refuse("invalid_json", "the body is cut short")
	}
	return err
}

// typeError is the refusal of a value of the wrong JSON kind in field.
func typeError(field, expected, got string) *apiError {
	a := refuse("invalid_json", "field %q must be %s, not %s", field, article(expected), article(got))
	a.details = map[string]any{"field": field, "expected": expected, "got": got}
	return a
}

// numberError is the refusal of a number, literal, that the field's type
// t cannot hold.
func numberError(field string, t reflect.Type, literal string) *apiError {
	var a *apiError
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		hi := int64(1)<<(t.Bits()-1) - 1
		a = refuse("invalid_json", "field %q must be a whole number from %d to %d, written without a fraction or an exponent, not %s",
			field, -hi-1, hi, literal)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		a = refuse("invalid_json", "field %q must be a whole number from 0 to %d, written without a fraction or an exponent, not %s",
			field, ^uint64(0)>>(64-t.Bits()), literal)
	default:
		a = refuse("invalid_json", "field %q cannot hold the number %s", field, literal)
	}
	a.details = map[string]any{"field": field, "expected": jsonKind(t), "got": "number"}
	return a
}

// article puts "a" or "an" before a JSON kind.
func article(kind string) string {
	if kind != "" && strings.ContainsRune("aeiou", rune(kind[0])) {
		return "an " + kind
	}
	return "a " + kind
}

// jsonKind names the JSON a Go type is read from.
func jsonKind(t reflect.Type) string {
	if t.Implements(textUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler) {
		return "string"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer" // as the OpenAPI document calls it
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.String:
		return "string"
	case reflect.Slice, reflect.Array:
		return "array"
	}
	return "object"
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// check walks raw (JSON decoded into any) beside t, the type it is to be
// decoded into, and refuses the first member, in key order, that t has no
// field for ("price.amont", "milestones[1].nmae"). encoding/json's
// DisallowUnknownFields stops at types that decode themselves, such as
// Money and Timers, and matches names without regard to case; this walk
// goes into both and takes a name only as it is spelt.
//
// It also refuses an amount its currency does not take ("1.555" CNY), or
// one of the wrong JSON kind, naming the field, which Money's own decoding
// cannot know: to it, the amount of {"price":{"amount":5}} is "amount".
func (s *server) check(raw any, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == moneyType {
		if err := moneyKinds(raw, path); err != nil {
			return err
		}
	}
	if _, ok := raw.(string); t == durationType && !ok && raw != nil {
		// A timer is written as a string ("72h0m0s"); a number would
		// reach the ledger's decoding, which cannot name the field.
		return typeError(path, "string", rawKind(raw))
	}
	switch raw := raw.(type) {
	case map[string]any:
		keys := slices.Sorted(maps.Keys(raw))
		if t.Kind() == reflect.Map {
			for _, k := range keys {
				if err := s.check(raw[k], t.Elem(), path+"."+k); err != nil {
					return err
				}
			}
			return nil
		}
		fields := jsonFields(t)
		if fields == nil {
			return nil // not an object in Go: the decode refuses it
		}
		for _, k := range keys {
			ft, ok := fields[k]
			name := strings.TrimPrefix(path+"."+k, ".")
			if !ok {
				e := refuse("unknown_field", "the body has a field %q that the request does not take", name)
				e.details = map[string]any{"field": name}
				return e
			}
			if err := s.check(raw[k], ft, name); err != nil {
				return err
			}
		}
		if t == moneyType {
			return s.checkAmount(raw, path)
		}
	case []any:
		if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			for i, x := range raw {
				if err := s.check(x, t.Elem(), path+"["+strconv.Itoa(i)+"]"); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// checkAmount refuses an amount, at path, whose currency the ledger does
// not know, however it is spelt ("cny" as "XYZ": unknown_currency, as a
// currency in a path is), or that its currency does not take (too many
// decimal places, negative, too large), with the ledger's own rule and
// error, adding the field it is in. An amount with no currency member is
// left to the decoding, which refuses it as malformed.
func (s *server) checkAmount(m map[string]any, path string) error {
	code, hasCode := m["currency"].(string)
	if !hasCode {
		return nil
	}
	cur, err := s.ledger.Currency(code)
	if err == nil {
		amount, ok := m["amount"].(string)
		if !ok {
			return nil
		}
		_, err = escrow.ParseMoney(amount, cur)
	}
	if err != nil {
		a := s.classify(nil, err)
		if a.details == nil {
			a.details = map[string]any{}
		}
		a.details["field"] = path
		return a
	}
	return nil
}

var moneyType = reflect.TypeFor[escrow.Money]()

// moneyKinds refuses an amount at path that is not an object or null, or
// whose amount or currency is not a string.
func moneyKinds(raw any, path string) error {
	m, ok := raw.(map[string]any)
	if !ok {
		if raw == nil {
			return nil
		}
		return typeError(path, "object", rawKind(raw))
	}
	for _, k := range []string{"amount", "currency"} {
		if v := m[k]; v != nil {
			if _, ok := v.(string); !ok {
				return typeError(path+"."+k, "string", rawKind(v))
			}
		}
	}
	return nil
}

// rawKind names the JSON kind of a value decoded into any (with
// UseNumber), in encoding/json's words.
func rawKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "bool"
	case json.Number:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	}
	return "object"
}

// jsonFields returns the members of the JSON object that t is written as,
// with the type of each; nil if t is not written as an object with fixed
// members. A Money is {"amount","currency"}; other structs are their
// exported fields under their json names, embedded structs' in line.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if t == moneyType {
		str := reflect.TypeFor[string]()
		return map[string]reflect.Type{"amount": str, "currency": str}
	}
	if t.Kind() != reflect.Struct || t == reflect.TypeFor[time.Time]() {
		return nil
	}
	fields := map[string]reflect.Type{}
	for f := range structFields(t) {
		fields[f.name] = f.typ
	}
	return fields
}

// A jsonField is one member of a struct's JSON object.
type jsonField struct {
	name     string
	typ      reflect.Type
	optional bool // omitempty or omitzero: it may be left out
}

// structFields yields the members of the JSON object of struct t, as
// encoding/json writes them: exported fields under their json names,
// fields of embedded structs without a name in line, "-" left out.
func structFields(t reflect.Type) func(yield func(jsonField) bool) {
	return func(yield func(jsonField) bool) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			name, opts, _ := strings.Cut(tag, ",")
			if tag == "-" || !f.IsExported() && !f.Anonymous {
				continue
			}
			if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
				for g := range structFields(f.Type) {
					if !yield(g) {
						return
					}
				}
				continue
			}
			if name == "" {
				name = f.Name
			}
			optional := slices.ContainsFunc(strings.Split(opts, ","), func(o string) bool {
				return o == "omitempty" || o == "omitzero"
			})
			if !yield(jsonField{name: name, typ: f.Type, optional: optional}) {
				return
			}
		}
	}
}

// Query parameters.

// queryInt reads an integer parameter from lo to hi; def if it is absent.
func (c *call) queryInt(name string, def, lo, hi int) (int, error) {
	s := c.r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || s[0] == '+' || n < lo || n > hi { // digits only, as a sequence number takes
		return 0, refuse("invalid_argument", "%s=%q: want a whole number from %d to %d", name, s, lo, hi)
	}
	return n, nil
}

// querySeq reads an event or journal sequence number; 0 if absent.
func (c *call) querySeq(name string) (uint64, error) {
	s := c.r.URL.Query().Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, refuse("invalid_argument", "%s=%q: want a sequence number, 0 or more", name, s)
	}
	return n, nil
}

// queryWord reads a parameter in an enumeration's words into v; an
// absent one leaves v as it is. An unknown word fails with the ledger's
// *escrow.EnumError, which lists the words there are.
func (c *call) queryWord(name string, v encoding.TextUnmarshaler) error {
	if s := c.r.URL.Query().Get(name); s != "" {
		return v.UnmarshalText([]byte(s))
	}
	return nil
}
