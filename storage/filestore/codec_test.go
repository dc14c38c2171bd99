package filestore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/google/go-cmp/cmp"
)

// moneyEqual compares Money by value; its fields are unexported.
var moneyEqual = cmp.Comparer(func(a, b escrow.Money) bool { return a == b })

// filler sets every field of a value to a distinct non-zero value, so that
// a field the codec forgets (one added to a record type later, say) comes
// back zero and fails the round trip.
type filler struct{ n int64 }

var (
	timeType     = reflect.TypeOf(time.Time{})
	moneyType    = reflect.TypeOf(escrow.Money{})
	currencyType = reflect.TypeOf(escrow.Currency{})
)

func (f *filler) fill(v reflect.Value) {
	f.n++
	n := f.n
	switch {
	case v.Type() == timeType:
		v.Set(reflect.ValueOf(time.Unix(1_700_000_000+n, n).UTC()))
		return
	case v.Type() == currencyType:
		v.Set(reflect.ValueOf(escrow.Currency{Code: "K" + strconv.FormatInt(n, 10), Minor: int(n % 10)}))
		return
	case v.Type() == moneyType:
		c := escrow.Currency{Code: "C" + strconv.FormatInt(n, 10), Minor: int(n % 10)}
		v.Set(reflect.ValueOf(escrow.RestoreMoney(-n*1000, c))) // negative, as WorldAccount's can be
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString("s" + strconv.FormatInt(n, 10) + "·ü")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(-(n % 100) - 1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(n%200) + 1)
	case reflect.Float64, reflect.Float32:
		v.SetFloat(float64(n) + 0.125)
	case reflect.Struct:
		for i := range v.NumField() {
			f.fill(v.Field(i))
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			v.SetBytes([]byte{byte(n), 0, 0xff})
			return
		}
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			f.fill(s.Index(i))
		}
		v.Set(s)
	case reflect.Array:
		for i := range v.Len() {
			f.fill(v.Index(i))
		}
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for range 3 {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			f.fill(k)
			f.fill(e)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	default:
		panic("filler: unhandled kind " + v.Kind().String())
	}
}

// filledOps returns one operation of each kind with every field set.
func filledOps() []op {
	f := &filler{}
	fill := func(p any) { f.fill(reflect.ValueOf(p).Elem()) }
	var ops []op
	add := func(o op) { ops = append(ops, o) }
	var o op
	fill(&o.account)
	o.kind = opAccount
	add(o)
	o = op{kind: opBalance}
	fill(&o.balance)
	add(o)
	o = op{kind: opEscrow}
	fill(&o.escrow)
	add(o)
	o = op{kind: opEntry}
	fill(&o.entry)
	add(o)
	o = op{kind: opEvent}
	fill(&o.event)
	add(o)
	o = op{kind: opIdempotency}
	fill(&o.idem)
	add(o)
	o = op{kind: opRating}
	fill(&o.rating)
	add(o)
	o = op{kind: opAggregate}
	fill(&o.agg)
	add(o)
	o = op{kind: opPairMonth}
	fill(&o.pair)
	add(o)
	o = op{kind: opItemMark}
	fill(&o.mark)
	add(o)
	o = op{kind: opDayCount}
	fill(&o.day)
	add(o)
	o = op{kind: opConsumer}
	fill(&o.cons)
	add(o)
	add(op{kind: opDeleteIdempotency, idem: escrow.IdempotencyRecord{Key: o.day.Party}})
	add(op{kind: opColdDue, dueIDs: []string{"a", "", "ünïcode", "a"}, dueAt: []int64{math.MinInt64, -1, 0, math.MaxInt64}})
	o = op{kind: opRaterDays}
	fill(&o.raters)
	add(o)
	return ops
}

func encodeOp(e *encoder, o *op) {
	switch o.kind {
	case opAccount:
		e.account(&o.account)
	case opBalance:
		e.balance(&o.balance)
	case opEscrow:
		e.escrow(&o.escrow)
	case opEntry:
		e.entry(&o.entry)
	case opEvent:
		e.event(&o.event)
	case opIdempotency:
		e.idempotency(&o.idem)
	case opRating:
		e.rating(&o.rating)
	case opAggregate:
		e.aggregate(&o.agg)
	case opPairMonth:
		e.pairMonth(&o.pair)
	case opItemMark:
		e.itemMark(&o.mark)
	case opDayCount:
		e.dayCount(&o.day)
	case opDeleteIdempotency:
		e.deleteIdempotency(o.idem.Key)
	case opConsumer:
		e.consumer(&o.cons)
	case opRaterDays:
		e.raterDays(&o.raters)
	case opColdDue:
		e.coldDue(o.dueIDs, o.dueAt)
	default:
		panic("encodeOp: kind " + strconv.Itoa(int(o.kind)))
	}
}

// decodeAll decodes every operation of a payload, copying each out of the
// decoder's reused buffers.
func decodeAll(b []byte) ([]op, error) {
	d := decoder{b: b, version: formatVersion}
	var out []op
	var o op
	for d.next(&o) {
		c := op{kind: o.kind}
		switch o.kind {
		case opAccount:
			c.account = o.account
		case opBalance:
			c.balance = o.balance
		case opEscrow:
			c.escrow = o.escrow
		case opEntry:
			c.entry = o.entry
			if o.entry.Postings != nil {
				c.entry.Postings = append([]escrow.Posting{}, o.entry.Postings...)
			}
		case opEvent:
			c.event = o.event
		case opIdempotency, opDeleteIdempotency:
			c.idem = o.idem
		case opRating:
			c.rating = o.rating
		case opAggregate:
			c.agg = o.agg
		case opPairMonth:
			c.pair = o.pair
		case opItemMark:
			c.mark = o.mark
		case opDayCount:
			c.day = o.day
		case opConsumer:
			c.cons = o.cons
		case opRaterDays:
			c.raters = o.raters
		case opSnapshotEnd:
			c.snapSeq, c.snapChunks = o.snapSeq, o.snapChunks
		case opColdDue:
			c.dueIDs, c.dueAt = slices.Clone(o.dueIDs), slices.Clone(o.dueAt)
		}
		out = append(out, c)
	}
	return out, d.err
}

func TestCodecRoundTrip(t *testing.T) {
	ops := filledOps()
	var e encoder
	for i := range ops {
		encodeOp(&e, &ops[i])
	}
	got, err := decodeAll(e.b)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if diff := cmp.Diff(ops, got, moneyEqual, cmp.AllowUnexported(op{})); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

// TestCodecNilAndEmpty checks that nil and empty slices, zero times and
// zero Money survive: the dump of a reopened store must match byte for byte.
func TestCodecNilAndEmpty(t *testing.T) {
	ops := []op{
		{kind: opEscrow, escrow: escrow.Escrow{Terms: escrow.Terms{ID: "nil"}}},
		{kind: opEscrow, escrow: escrow.Escrow{Terms: escrow.Terms{ID: "empty", Milestones: []escrow.Milestone{},
			Metadata: map[string]string{}}, Shipments: []escrow.Shipment{}, Evidence: []escrow.Evidence{}}},
		{kind: opEvent, event: escrow.Event{Seq: 1}},
		{kind: opEvent, event: escrow.Event{Seq: 2, Metadata: map[string]string{}}},
		{kind: opEntry, entry: escrow.Entry{Seq: 1, Postings: []escrow.Posting{}}},
		{kind: opEntry, entry: escrow.Entry{Seq: 2}},
		{kind: opIdempotency, idem: escrow.IdempotencyRecord{Key: "nil"}},
		{kind: opIdempotency, idem: escrow.IdempotencyRecord{Key: "empty", Result: []byte{}}},
		{kind: opBalance, balance: escrow.Balance{Account: "@world", Currency: escrow.JPY,
			Available: escrow.RestoreMoney(-escrow.MaxUnits, escrow.JPY), Held: escrow.RestoreMoney(0, escrow.JPY)}},
	}
	var e encoder
	for i := range ops {
		encodeOp(&e, &ops[i])
	}
	got, err := decodeAll(e.b)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if diff := cmp.Diff(ops, got, moneyEqual, cmp.AllowUnexported(op{})); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if got[0].escrow.Milestones != nil || got[1].escrow.Milestones == nil {
		t.Errorf("milestones: nil came back as %#v, empty as %#v", got[0].escrow.Milestones, got[1].escrow.Milestones)
	}
	if got[0].escrow.Metadata != nil || got[1].escrow.Metadata == nil || got[2].event.Metadata != nil || got[3].event.Metadata == nil {
		t.Errorf("metadata: nil came back as %#v and %#v, empty as %#v and %#v", got[0].escrow.Metadata,
			got[2].event.Metadata, got[1].escrow.Metadata, got[3].event.Metadata)
	}
	if got[0].escrow.Shipments != nil || got[1].escrow.Shipments == nil {
		t.Errorf("shipments: nil came back as %#v, empty as %#v", got[0].escrow.Shipments, got[1].escrow.Shipments)
	}
	if got[0].escrow.Evidence != nil || got[1].escrow.Evidence == nil {
		t.Errorf("evidence: nil came back as %#v, empty as %#v", got[0].escrow.Evidence, got[1].escrow.Evidence)
	}
	if got[6].idem.Result != nil || got[7].idem.Result == nil {
		t.Errorf("results: nil came back as %#v, empty as %#v", got[6].idem.Result, got[7].idem.Result)
	}
}

// TestCodecTruncated decodes every proper prefix of a valid payload: each
// must fail cleanly, never panic nor succeed with all operations.
func TestCodecTruncated(t *testing.T) {
	ops := filledOps()
	var e encoder
	for i := range ops {
		encodeOp(&e, &ops[i])
	}
	for n := 0; n < len(e.b); n++ {
		got, err := decodeAll(e.b[:n])
		if n > 0 && err == nil && len(got) == len(ops) {
			t.Fatalf("prefix of %d of %d bytes decoded as the whole", n, len(e.b))
		}
		if err != nil && !errors.Is(err, errDecode) {
			t.Fatalf("prefix of %d bytes: error %v does not wrap errDecode", n, err)
		}
	}
}

func TestFrame(t *testing.T) {
	payload := []byte("payload")
	b := appendFrame(nil, 42, 3, payload)
	if len(b) != frameHeader+len(payload) {
		t.Fatalf("frame is %d bytes, want %d", len(b), frameHeader+len(payload))
	}
	seq, back, got, size, ok := parseFrame(b)
	if !ok || seq != 42 || back != 3 || !bytes.Equal(got, payload) || size != len(b) {
		t.Fatalf("parseFrame = %d, %d, %q, %d, %v", seq, back, got, size, ok)
	}
	// Every single-bit flip is caught, in the header and in the payload.
	for i := range len(b) * 8 {
		c := bytes.Clone(b)
		c[i/8] ^= 1 << (i % 8)
		if _, _, _, _, ok := parseFrame(c); ok {
			t.Fatalf("flipping bit %d went unnoticed", i)
		}
	}
	for n := range len(b) {
		if _, _, _, _, ok := parseFrame(b[:n]); ok {
			t.Fatalf("a frame cut to %d bytes parsed", n)
		}
	}
}

func TestLaterBatch(t *testing.T) {
	// Records 5, 6 and 7 written together (back 0, 1, 2), then 8 alone.
	var b []byte
	b = appendFrame(b, 5, 0, []byte("five"))
	six := len(b)
	b = appendFrame(b, 6, 1, []byte("six"))
	seven := len(b)
	b = appendFrame(b, 7, 2, []byte("seven"))
	eight := len(b)
	b = appendFrame(b, 8, 0, []byte("eight"))

	damaged := bytes.Clone(b)
	damaged[six+frameHeader] ^= 0xff // record 6's payload
	// Damage to 6 followed by 7 of its own batch is a torn write...
	if at, found := laterBatch(damaged[six:seven+1+frameHeader+5], 6); found {
		t.Errorf("record 7 of 6's batch counted as a later write (at %d)", at)
	}
	// ... but followed by 8, written after 6's batch was synced, it is
	// damage to synced data.
	at, found := laterBatch(damaged[six:], 6)
	if !found || six+at != eight {
		t.Errorf("laterBatch = %d, %v; want record 8 at %d", six+at, found, eight-six)
	}
}

// FuzzDecodeRecord decodes arbitrary payloads: never a panic, and whatever
// decodes re-encodes to something that decodes the same.
func FuzzDecodeRecord(f *testing.F) {
	ops := filledOps()
	for i := range ops {
		var e encoder
		encodeOp(&e, &ops[i])
		f.Add(e.b)
	}
	f.Add([]byte{})
	f.Add([]byte{opEscrow, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeAll(b)
		if err != nil {
			if !errors.Is(err, errDecode) {
				t.Fatalf("error %v does not wrap errDecode", err)
			}
			return
		}
		var e encoder
		for i := range got {
			if got[i].kind == opSnapshotEnd {
				e.snapshotEnd(got[i].snapSeq, got[i].snapChunks, got[i].snapJournal, got[i].snapEvents, got[i].snapWritten, got[i].snapTables)
				continue
			}
			encodeOp(&e, &got[i])
		}
		again, err := decodeAll(e.b)
		if err != nil {
			t.Fatalf("re-encoded payload does not decode: %v", err)
		}
		if diff := cmp.Diff(got, again, moneyEqual, cmp.AllowUnexported(op{}), cmp.Comparer(func(a, b float64) bool {
			return a == b || a != a && b != b // NaN decodes as NaN
		})); diff != "" {
			t.Fatalf("second round trip differs (-first +second):\n%s", diff)
		}
	})
}

// TestEveryWriteIsRecorded calls each write method of escrow.Tx (those
// named Put… or Append…) through the recording transaction with a filled
// record, and checks that it was recorded and that replaying the record
// into an empty store writes the same: a write method added to the
// interface and forwarded without being recorded fails here.
func TestEveryWriteIsRecorded(t *testing.T) {
	txType := reflect.TypeOf((*escrow.Tx)(nil)).Elem()
	writes := 0
	for i := range txType.NumMethod() {
		m := txType.Method(i)
		if !strings.HasPrefix(m.Name, "Put") && !strings.HasPrefix(m.Name, "Append") {
			continue
		}
		writes++
		t.Run(m.Name, func(t *testing.T) {
			s := openT(t, t.TempDir(), &Options{NoSync: true})
			defer s.Close()
			if m.Type.NumIn() != 1 {
				t.Fatalf("%s takes %d arguments; teach this test about it", m.Name, m.Type.NumIn())
			}
			arg := reflect.New(m.Type.In(0))
			if arg.Elem().Kind() == reflect.Pointer {
				arg.Elem().Set(reflect.New(arg.Elem().Type().Elem()))
				(&filler{}).fill(arg.Elem().Elem())
			} else {
				(&filler{}).fill(arg.Elem())
			}
			var recorded []byte
			err := s.Update(context.Background(), func(tx escrow.Tx) error {
				out := reflect.ValueOf(tx).MethodByName(m.Name).Call([]reflect.Value{arg.Elem()})
				if err, _ := out[0].Interface().(error); err != nil {
					return err
				}
				recorded = bytes.Clone(s.ops.b)
				return nil
			})
			if err != nil {
				t.Fatalf("%s: %v", m.Name, err)
			}
			if len(recorded) == 0 {
				t.Fatalf("%s was not recorded", m.Name)
			}
			want := dumpT(t, s)
			s.Close()
			s2 := openT(t, s.dir, nil)
			if got := dumpT(t, s2); !bytes.Equal(want, got) {
				t.Fatalf("%s replayed differently:\nwant %.1500s\ngot  %.1500s", m.Name, want, got)
			}
			// And from a snapshot, which reads it back through the scans.
			if err := s2.Compact(); err != nil {
				t.Fatal(err)
			}
			s2.Close()
			s3 := openT(t, s.dir, nil)
			defer s3.Close()
			if s3.snapSeq != 1 {
				t.Fatalf("reopened at snapshot %d, want 1", s3.snapSeq)
			}
			if got := dumpT(t, s3); !bytes.Equal(want, got) {
				t.Fatalf("%s came back from a snapshot differently:\nwant %.1500s\ngot  %.1500s", m.Name, want, got)
			}
		})
	}
	if writes < 10 {
		t.Fatalf("found %d write methods, want at least 10", writes)
	}
}

// clearV3 zeroes the fields format version 3 added to an escrow.
func clearV3(x *escrow.Escrow) {
	x.Shipments, x.Extended, x.Return, x.Evidence = nil, escrow.Extensions{}, escrow.Return{}, nil
	x.Cart, x.CartSize, x.Dispute.EscalatedAt = "", 0, time.Time{}
	t := &x.Timers
	t.ReturnResponseWithin, t.ReturnShipWithin, t.ReturnReceiveWithin, t.ReturnDisputeWithin = 0, 0, 0, 0
	t.ArbiterWithin, t.BuyerExtension, t.SellerExtensionLimit = 0, 0, 0
}

// v3EscrowFields is how many bytes the fields of version 3 take at the
// end of an escrow when they are all zero: one each.
const v3EscrowFields = 21

// clearV4 zeroes the fields format version 4 added to an escrow.
func clearV4(x *escrow.Escrow) { x.SKU = "" }

// clearV4Rating zeroes the fields format version 4 added to a rating.
func clearV4Rating(r *escrow.Rating) {
	r.Withdrawn, r.WithdrawnAt = false, time.Time{}
	r.Voided, r.VoidedBy, r.VoidReason, r.VoidedAt = false, "", "", time.Time{}
}

// v4EscrowFields and v4RatingFields are how many bytes the fields of
// version 4 take at the end of an escrow and of a rating when they are
// all zero: one each.
const (
	v4EscrowFields = 1
	v4RatingFields = 6
)

// cutLater encodes ops and cuts from the end of each operation's fields
// the last later[kind] bytes, which must all be zero: the operations as
// they were written before those fields came.
func cutLater(t *testing.T, ops []op, later map[byte]int) []byte {
	t.Helper()
	var old []byte
	for i := range ops {
		var e encoder
		encodeOp(&e, &ops[i])
		kind := e.b[0]
		n, k := binary.Uvarint(e.b[1:])
		fields := e.b[1+k:]
		if uint64(len(fields)) != n {
			t.Fatalf("op %d: frame says %d bytes, has %d", kind, n, len(fields))
		}
		cut := fields[len(fields)-later[kind]:]
		if !bytes.Equal(cut, make([]byte, len(cut))) {
			t.Fatalf("op %d: later fields, all zero, encode as %x", kind, cut)
		}
		fields = fields[:len(fields)-len(cut)]
		old = append(old, kind)
		old = binary.AppendUvarint(old, uint64(len(fields)))
		old = append(old, fields...)
	}
	return old
}

// decodeVersion is decodeAll for a payload of format version v.
func decodeVersion(b []byte, v uint32) ([]op, error) {
	d := decoder{b: b, version: v}
	var out []op
	for {
		var o op
		if !d.next(&o) {
			return out, d.err
		}
		out = append(out, o)
	}
}

// TestCodecRecordsBeforeLaterFields: a version 2 operation written before
// fields were added to its end (an escrow's refusal, dispute and
// metadata; an event's metadata and parties) stops where they begin, and
// decodes with them zero, as do the fields of versions 3 and 4, which it
// never has.
func TestCodecRecordsBeforeLaterFields(t *testing.T) {
	var want []op
	for _, o := range filledOps() {
		switch o.kind {
		case opEscrow:
			o.escrow.Refund.RefuseReason, o.escrow.Refund.RefusedAt = "", time.Time{}
			o.escrow.Dispute, o.escrow.Metadata = escrow.DisputeClaim{}, nil
			clearV3(&o.escrow)
			clearV4(&o.escrow)
		case opEvent:
			o.event.Metadata, o.event.Buyer, o.event.Seller = nil, "", ""
		case opRating:
			clearV4Rating(&o.rating)
		default:
			continue
		}
		want = append(want, o)
	}
	// Each later field, zero, is one zero byte: 6 of version 2 and those
	// of versions 3 and 4 in an escrow, 3 in an event, those of version 4
	// in a rating.
	old := cutLater(t, want, map[byte]int{opEscrow: 6 + v3EscrowFields + v4EscrowFields, opEvent: 3, opRating: v4RatingFields})
	for _, v := range []uint32{2, formatVersion} {
		got, err := decodeVersion(old, v)
		if err != nil {
			t.Fatalf("decode as version %d: %v", v, err)
		}
		if diff := cmp.Diff(want, got, moneyEqual, cmp.AllowUnexported(op{})); diff != "" {
			t.Errorf("records without the later fields, as version %d (-want +got):\n%s", v, diff)
		}
	}
}

// TestCodecEscrowVersion2: an escrow written in format version 2, every
// field of that version set, ends before the fields of version 3 and
// decodes with them zero, whether its file is of version 2 (a log
// segment or snapshot of an older release) or read as the current
// version (a cold table, whose values carry no version). A version 2 file
// cannot hold the fields of version 3: an escrow with them is damage
// there.
func TestCodecEscrowVersion2(t *testing.T) {
	var want op
	for _, o := range filledOps() {
		if o.kind == opEscrow {
			want = o
		}
	}
	full := want
	clearV3(&want.escrow)
	clearV4(&want.escrow)
	if reflect.DeepEqual(full.escrow, want.escrow) {
		t.Fatal("the filled escrow has no field of version 3 set")
	}
	old := cutLater(t, []op{want}, map[byte]int{opEscrow: v3EscrowFields + v4EscrowFields})
	for _, v := range []uint32{2, formatVersion} {
		got, err := decodeVersion(old, v)
		if err != nil {
			t.Fatalf("decode as version %d: %v", v, err)
		}
		if diff := cmp.Diff([]op{want}, got, moneyEqual, cmp.AllowUnexported(op{})); diff != "" {
			t.Errorf("version 2 escrow, read as version %d (-want +got):\n%s", v, diff)
		}
	}
	var e encoder
	encodeOp(&e, &full)
	if _, err := decodeVersion(e.b, 2); !errors.Is(err, errDecode) {
		t.Errorf("a version 3 escrow read as version 2: err = %v, want errDecode", err)
	}
}

// TestCodecVersion3: an escrow and a rating written in format version 3,
// every field of that version set, end before the fields of version 4 and
// decode with them zero, whether their file is of version 3 or read as
// the current version (a cold table). A version 3 file cannot hold the
// fields of version 4, nor an item mark: they are damage there.
func TestCodecVersion3(t *testing.T) {
	var want, full []op
	for _, o := range filledOps() {
		switch o.kind {
		case opEscrow, opRating:
			full = append(full, o)
			clearV4(&o.escrow)
			clearV4Rating(&o.rating)
			want = append(want, o)
		}
	}
	if len(want) != 2 || reflect.DeepEqual(full, want) {
		t.Fatal("the filled escrow and rating have no field of version 4 set")
	}
	old := cutLater(t, want, map[byte]int{opEscrow: v4EscrowFields, opRating: v4RatingFields})
	for _, v := range []uint32{3, formatVersion} {
		got, err := decodeVersion(old, v)
		if err != nil {
			t.Fatalf("decode as version %d: %v", v, err)
		}
		if diff := cmp.Diff(want, got, moneyEqual, cmp.AllowUnexported(op{})); diff != "" {
			t.Errorf("version 3 records, read as version %d (-want +got):\n%s", v, diff)
		}
	}
	for _, o := range append(full, filledOps()...) {
		if o.kind != opEscrow && o.kind != opRating && o.kind != opItemMark {
			continue
		}
		var e encoder
		encodeOp(&e, &o)
		if _, err := decodeVersion(e.b, 3); !errors.Is(err, errDecode) {
			t.Errorf("a version 4 op %d read as version 3: err = %v, want errDecode", o.kind, err)
		}
	}
}

// TestCodecTradeFields round-trips escrows holding what the trade's later
// steps keep on them (parts shipped, extensions, a return, evidence, a
// cart, an escalation and the timers that go with them) with each set
// alone, so that a field read into another's place shows.
func TestCodecTradeFields(t *testing.T) {
	at := func(h int) time.Time { return time.Date(2026, 4, 1, h, 0, 0, 123, time.UTC) }
	const day = 24 * time.Hour
	escrows := []escrow.Escrow{
		{Shipments: []escrow.Shipment{{Tracking: "SF1", At: at(1)}, {At: at(2)}, {Tracking: "SF3"}}},
		{Shipments: []escrow.Shipment{{}}},
		{Extended: escrow.Extensions{Buyer: 3 * day}},
		{Extended: escrow.Extensions{Seller: 30*day + 1}},
		{Return: escrow.Return{Address: "1 Dock Road", AgreedAt: at(3)}},
		{Return: escrow.Return{Tracking: "RT9", ShippedAt: at(4), ReceivedAt: at(5)}},
		{Return: escrow.Return{RefuseReason: "came back broken", RefusedAt: at(6)}},
		{Evidence: []escrow.Evidence{{By: escrow.Buyer, Note: "photo of the box", Ref: "file:42", At: at(7)},
			{By: escrow.Arbiter, Note: "asked the courier", At: at(8)}, {By: escrow.Seller, Note: "n"}}},
		{Cart: "order-1", CartSize: 100},
		{Dispute: escrow.DisputeClaim{By: escrow.Seller, Reason: "r", At: at(9), EscalatedAt: at(10)}},
		{Dispute: escrow.DisputeClaim{EscalatedAt: at(11)}},
	}
	timers := escrow.DefaultTimers()
	timers.ArbiterWithin = 2 * day
	escrows = append(escrows,
		escrow.Escrow{Terms: escrow.Terms{Timers: timers}},
		escrow.Escrow{Terms: escrow.Terms{Timers: escrow.Timers{ReturnResponseWithin: 1}}},
		escrow.Escrow{Terms: escrow.Terms{Timers: escrow.Timers{ReturnShipWithin: 2}}},
		escrow.Escrow{Terms: escrow.Terms{Timers: escrow.Timers{ReturnReceiveWithin: 3}}},
		escrow.Escrow{Terms: escrow.Terms{Timers: escrow.Timers{ReturnDisputeWithin: 4}}},
		escrow.Escrow{Terms: escrow.Terms{Timers: escrow.Timers{ArbiterWithin: 5}}},
		escrow.Escrow{Terms: escrow.Terms{Timers: escrow.Timers{BuyerExtension: 6}}},
		escrow.Escrow{Terms: escrow.Terms{Timers: escrow.Timers{SellerExtensionLimit: 7}}},
	)
	var ops []op
	var e encoder
	for i, x := range escrows {
		x.ID, x.State, x.Version = "e"+strconv.Itoa(i), escrow.Disputed, uint64(i+1)
		ops = append(ops, op{kind: opEscrow, escrow: x})
		encodeOp(&e, &ops[i])
	}
	got, err := decodeAll(e.b)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if diff := cmp.Diff(ops, got, moneyEqual, cmp.AllowUnexported(op{})); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

// TestCodecMetadataDamage: metadata whose keys repeat or are out of
// order was not written by the encoder, and fails to decode.
func TestCodecMetadataDamage(t *testing.T) {
	for name, pairs := range map[string][]string{"sorted": {"a", "1", "b", "2"},
		"repeated": {"a", "1", "a", "2"}, "unsorted": {"b", "1", "a", "2"}} {
		e := encoder{}
		at := e.begin(opEvent)
		e.uvarint(1)
		e.str(string(escrow.EscrowPaid))
		e.time(time.Time{})
		e.str("")
		e.str("e1")
		e.str("")
		e.bool(false)
		e.uvarint(0)
		e.money(escrow.Money{})
		e.money(escrow.Money{})
		e.str("")
		e.count(len(pairs)/2, false)
		for _, s := range pairs {
			e.str(s)
		}
		e.end(at)
		got, err := decodeAll(e.b)
		switch {
		case name == "sorted" && (err != nil || len(got) != 1 || got[0].event.Metadata["b"] != "2"):
			t.Errorf("sorted keys: %+v, %v", got, err)
		case name != "sorted" && !errors.Is(err, errDecode):
			t.Errorf("%s keys: err = %v, want errDecode", name, err)
		}
	}
}

// v4AggregateFields and v4DayCountFields are how many bytes the fields of
// version 4 take at the end of an aggregate and a day count when they are
// all zero: one each.
const (
	v4AggregateFields = 10
	v4DayCountFields  = 8
)

// TestCodecDetailsVersion3: an aggregate and a day count written in
// format version 3, every field of that version set, end before the
// detail sums and distinct raters of version 4 and decode with them zero
// (and the aggregate without DetailDays, which the ledger then works
// out); a version 3 file cannot hold them, nor a record of a rater's
// days: a record with them is damage there.
func TestCodecDetailsVersion3(t *testing.T) {
	var full []op
	for _, o := range filledOps() {
		switch o.kind {
		case opAggregate, opDayCount:
			full = append(full, o)
		case opRaterDays:
			var e encoder
			encodeOp(&e, &o)
			if _, err := decodeVersion(e.b, 3); !errors.Is(err, errDecode) {
				t.Errorf("a record of a rater's days read as version 3: err = %v, want errDecode", err)
			}
		}
	}
	if len(full) != 2 {
		t.Fatalf("filledOps has %d aggregates and day counts, want one of each", len(full))
	}
	want := slices.Clone(full)
	for i := range want {
		a, d := &want[i].agg, &want[i].day
		if a.DetailWindowSums == ([3]int64{}) && d.DetailSums == ([3]int32{}) {
			t.Fatalf("the filled op %d has no detail sums of version 4 set", want[i].kind)
		}
		a.DetailWindowSums, a.DetailWindowCounts, a.DetailDays = [3]int64{}, [3]int64{}, false
		a.UniquePositive, a.UniqueNegative, a.RatersKept = 0, 0, false
		d.DetailSums, d.DetailCounts = [3]int32{}, [3]int32{}
		d.UniquePositive, d.UniqueNegative = 0, 0
	}
	old := cutLater(t, want, map[byte]int{opAggregate: v4AggregateFields, opDayCount: v4DayCountFields})
	for _, v := range []uint32{3, formatVersion} {
		got, err := decodeVersion(old, v)
		if err != nil {
			t.Fatalf("decode as version %d: %v", v, err)
		}
		if diff := cmp.Diff(want, got, moneyEqual, cmp.AllowUnexported(op{})); diff != "" {
			t.Errorf("version 3 records, read as version %d (-want +got):\n%s", v, diff)
		}
	}
	for i := range full {
		var e encoder
		encodeOp(&e, &full[i])
		if _, err := decodeVersion(e.b, 3); !errors.Is(err, errDecode) {
			t.Errorf("a version 4 op %d read as version 3: err = %v, want errDecode", full[i].kind, err)
		}
		got, err := decodeVersion(e.b, formatVersion)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]op{full[i]}, got, moneyEqual, cmp.AllowUnexported(op{})); diff != "" {
			t.Errorf("version 4 op %d (-want +got):\n%s", full[i].kind, diff)
		}
	}
}
