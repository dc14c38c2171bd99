package filestore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/memstore"
)

// A record's payload is a sequence of operations. Each write method of
// escrow.Tx is one kind, so replaying the operations in order through the
// same methods rebuilds exactly the state the transaction left. Integers
// are varints; strings and byte slices carry their length; slices carry
// their length plus one, zero meaning nil, so that nil and empty survive a
// round trip.
//
// From format version 2 on, an operation is its kind byte, the length of its
// fields as a uvarint, and the fields. In version 1 (files without a
// header) it is the kind byte and the fields, unframed.
//
// To add a field to an operation: append it to the end of the operation's
// encoder, and read it at the end of its decoder under a check of
// d.version against formatVersion (bumped if the version that carries the
// field has been released). Version 1 ops are not framed, so their decoder
// must stop where version 1 stopped; a framed op that ends before a field
// decodes that field as zero. Old stores therefore open unchanged, and the
// new field reads as zero in their records.
//
// Fields added so: an escrow's refusal (RefuseReason, RefusedAt), its
// Dispute and its Metadata, and an event's Metadata, Buyer and Seller, all
// at the end of their operations. Version 2 had not been released when
// they came, so they did not bump formatVersion: a version 2 record
// written before them ends where they begin and reads them as zero, a
// version 1 record never has them.
//
// Format version 3 appends to an escrow its Shipments, Extended, Return,
// Evidence, Cart and CartSize, Dispute.EscalatedAt, and the Timers of a
// return, the arbiter and the extensions (ReturnResponseWithin,
// ReturnShipWithin, ReturnReceiveWithin, ReturnDisputeWithin,
// ArbiterWithin, BuyerExtension, SellerExtensionLimit). Version 2 had
// been released, so they bumped formatVersion: a release that reads up to
// version 2 refuses a store holding them with a VersionError instead of
// calling their records damaged, and a version 2 record, which never has
// them, reads them as zero. A cold table's values carry no version and
// are read as the current one: those a version 2 release wrote end before
// these fields, and read them as zero too.
//
// Format version 4 appends to an escrow its SKU, and to a rating Withdrawn,
// WithdrawnAt, Voided, VoidedBy, VoidReason and VoidedAt, and adds the
// operation opItemMark. Version 3 had been released, so they bumped
// formatVersion as version 3's fields did; a record of an older version
// reads them as zero and never holds an opItemMark.
//
// Day counts and aggregates gained fields after version 4's first records,
// which did not bump formatVersion, as no release came between: a day
// count appends its DetailSums, DetailCounts, UniquePositive and
// UniqueNegative, an aggregate its DetailWindowSums, DetailWindowCounts,
// DetailDays, UniquePositive, UniqueNegative and RatersKept. A record
// written before them ends where they begin and reads them as zero: an
// aggregate then reads DetailDays and RatersKept as false, and the ledger
// works the rest out from the ratings when it next writes it. Version 4
// also gained the operation opRaterDays, which an older version never
// holds. None of these is kept in a cold table.
//
// A map is written as count writes a slice's length, then its pairs in
// key order, so that one map always encodes the same; a decoder refuses
// keys repeated or out of order.
const (
	opAccount     byte = 1
	opBalance     byte = 2
	opEscrow      byte = 3
	opEntry       byte = 4
	opEvent       byte = 5
	opIdempotency byte = 6
	opRating      byte = 7
	opAggregate   byte = 8
	opPairMonth   byte = 9
	opDayCount    byte = 10
	// opDeleteIdempotency removes the idempotency record under its key.
	opDeleteIdempotency byte = 11
	opConsumer          byte = 12 // added after version 2's first records
	// opColdDue files in the due index escrows that left memory for the
	// cold tables with a timer still set, up to coldDueBatch of them in
	// the order of their due times; only snapshots hold it.
	opColdDue byte = 13
	// opItemMark puts an item mark, or, with an empty Escrow, removes it;
	// added in version 4.
	opItemMark byte = 14
	// opRaterDays puts a record of a rater's days; added in version 4.
	opRaterDays byte = 15
	// opSnapshotEnd ends a snapshot file; it never appears in the log.
	opSnapshotEnd byte = 0x7f
)

// errDecode reports a payload that does not decode. Callers wrap it in a
// CorruptError naming the file and offset.
var errDecode = errors.New("malformed record")

// encoder appends the binary form of records to b.
type encoder struct{ b []byte }

func (e *encoder) byte(v byte)         { e.b = append(e.b, v) }
func (e *encoder) uvarint(v uint64)    { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) varint(v int64)      { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) str(s string)        { e.uvarint(uint64(len(s))); e.b = append(e.b, s...) }
func (e *encoder) bool(v bool)         { e.byte(boolByte(v)) }
func (e *encoder) dur(d time.Duration) { e.varint(int64(d)) }

// begin starts an operation of the given kind; end, passed what begin
// returned, puts the length of its fields before them.
func (e *encoder) begin(kind byte) int {
	e.b = append(e.b, kind, 0)
	return len(e.b)
}

func (e *encoder) end(start int) {
	n := len(e.b) - start
	var lb [binary.MaxVarintLen64]byte
	k := binary.PutUvarint(lb[:], uint64(n))
	if k > 1 { // the one byte begin reserved is too few: move the fields
		e.b = append(e.b, lb[1:k]...)
		copy(e.b[start+k-1:], e.b[start:start+n])
	}
	copy(e.b[start-1:], lb[:k])
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// time writes 0 for the zero time, else 1, the Unix seconds and the
// nanoseconds. The location is not kept: the ledger stores UTC.
func (e *encoder) time(t time.Time) {
	if t.IsZero() {
		e.byte(0)
		return
	}
	e.byte(1)
	e.varint(t.Unix())
	e.uvarint(uint64(t.Nanosecond()))
}

func (e *encoder) currency(c escrow.Currency) {
	e.str(c.Code)
	e.varint(int64(c.Minor))
}

func (e *encoder) money(m escrow.Money) {
	e.currency(m.Currency())
	e.varint(m.Units())
}

func (e *encoder) account(a *escrow.Account) {
	at := e.begin(opAccount)
	e.str(a.ID)
	e.bool(a.System)
	e.time(a.CreatedAt)
	e.end(at)
}

func (e *encoder) balance(b *escrow.Balance) {
	at := e.begin(opBalance)
	e.str(b.Account)
	e.currency(b.Currency)
	e.money(b.Available)
	e.money(b.Held)
	e.end(at)
}

func (e *encoder) escrow(x *escrow.Escrow) {
	at := e.begin(opEscrow)
	e.str(x.ID)
	e.str(x.Buyer)
	e.str(x.Seller)
	e.str(x.Arbiter)
	e.money(x.Price)
	e.str(x.Item)
	e.count(len(x.Milestones), x.Milestones == nil)
	for _, m := range x.Milestones {
		e.str(m.Name)
		e.money(m.Amount)
	}
	e.dur(x.Timers.PayWithin)
	e.dur(x.Timers.ShipWithin)
	e.dur(x.Timers.ConfirmWithin)
	e.dur(x.Timers.RefundResponseWithin)
	e.varint(x.Fee.RatePPM)
	e.money(x.Fee.Fixed)
	e.varint(int64(x.Fee.Rounding))
	e.uvarint(uint64(x.State))
	e.money(x.Held)
	e.money(x.Released)
	e.money(x.Fees)
	e.money(x.Refunded)
	e.varint(int64(x.NextMilestone))
	e.str(x.Tracking)
	e.money(x.Refund.Amount)
	e.str(x.Refund.Reason)
	e.time(x.Refund.At)
	e.uvarint(uint64(x.Resume))
	e.dur(x.Paused)
	e.time(x.DueAt)
	e.uvarint(uint64(x.DisputeLoser))
	e.uvarint(uint64(x.Rated))
	e.time(x.RatingDueAt)
	e.time(x.CreatedAt)
	e.time(x.PaidAt)
	e.time(x.ShippedAt)
	e.time(x.EndedAt)
	e.time(x.UpdatedAt)
	e.uvarint(x.Version)
	// Added in format version 2 after its first records (see the top of
	// this file): a record that ends before them decodes them as zero.
	e.str(x.Refund.RefuseReason)
	e.time(x.Refund.RefusedAt)
	e.uvarint(uint64(x.Dispute.By))
	e.str(x.Dispute.Reason)
	e.time(x.Dispute.At)
	e.metadata(x.Metadata)
	// Added in format version 3 (see the top of this file): a version 2
	// record ends before them and decodes them as zero.
	e.count(len(x.Shipments), x.Shipments == nil)
	for _, s := range x.Shipments {
		e.str(s.Tracking)
		e.time(s.At)
	}
	e.dur(x.Extended.Buyer)
	e.dur(x.Extended.Seller)
	e.str(x.Return.Address)
	e.time(x.Return.AgreedAt)
	e.str(x.Return.Tracking)
	e.time(x.Return.ShippedAt)
	e.time(x.Return.ReceivedAt)
	e.str(x.Return.RefuseReason)
	e.time(x.Return.RefusedAt)
	e.count(len(x.Evidence), x.Evidence == nil)
	for _, v := range x.Evidence {
		e.uvarint(uint64(v.By))
		e.str(v.Note)
		e.str(v.Ref)
		e.time(v.At)
	}
	e.str(x.Cart)
	e.varint(int64(x.CartSize))
	e.time(x.Dispute.EscalatedAt)
	e.dur(x.Timers.ReturnResponseWithin)
	e.dur(x.Timers.ReturnShipWithin)
	e.dur(x.Timers.ReturnReceiveWithin)
	e.dur(x.Timers.ReturnDisputeWithin)
	e.dur(x.Timers.ArbiterWithin)
	e.dur(x.Timers.BuyerExtension)
	e.dur(x.Timers.SellerExtensionLimit)
	// Added in format version 4 (see the top of this file).
	e.str(x.SKU)
	e.end(at)
}

// metadata writes a map's length as count does, then its pairs in key
// order, so that one map always encodes the same.
func (e *encoder) metadata(m map[string]string) {
	e.count(len(m), m == nil)
	for _, k := range slices.Sorted(maps.Keys(m)) {
		e.str(k)
		e.str(m[k])
	}
}

func (e *encoder) entry(x *escrow.Entry) {
	at := e.begin(opEntry)
	e.uvarint(x.Seq)
	e.time(x.At)
	e.str(string(x.Kind))
	e.str(x.Escrow)
	e.currency(x.Currency)
	e.count(len(x.Postings), x.Postings == nil)
	for _, p := range x.Postings {
		e.str(p.Account)
		e.uvarint(uint64(p.Bucket))
		e.varint(p.Change)
	}
	e.end(at)
}

func (e *encoder) event(x *escrow.Event) {
	at := e.begin(opEvent)
	e.uvarint(x.Seq)
	e.str(string(x.Type))
	e.time(x.At)
	e.str(x.Account)
	e.str(x.Escrow)
	e.str(x.Actor)
	e.bool(x.ByTimer)
	e.uvarint(uint64(x.State))
	e.money(x.Amount)
	e.money(x.Fee)
	e.str(x.Note)
	e.metadata(x.Metadata) // added after version 2's first records
	e.str(x.Buyer)         // added after version 2's first records
	e.str(x.Seller)
	e.end(at)
}

// snapshotEnd writes the operation that ends a snapshot covering the log
// up to seq in chunks chunks.
//
// journal and events, added with cold tables, are the last journal entry
// and event that the tables hold: the snapshot's start after them. written
// is when the snapshot was written.
// tables lists the cold tables the snapshot goes with, by the range of
// checkpoints each holds.
func (e *encoder) snapshotEnd(seq, chunks, journal, events uint64, written time.Time, tables []tableRange) {
	at := e.begin(opSnapshotEnd)
	e.uvarint(seq)
	e.uvarint(chunks)
	e.uvarint(journal)
	e.uvarint(events)
	e.time(written)
	e.count(len(tables), tables == nil)
	for _, t := range tables {
		e.uvarint(t.lo)
		e.uvarint(t.hi)
	}
	e.end(at)
}

// coldDueBatch is the most escrows one opColdDue files.
const coldDueBatch = 4096

// coldDue writes an opColdDue: escrow ids[i] is due at the UnixNano
// dues[i], dues in increasing order. The times go as the first and the
// differences from each to the next, with the lengths of the ids, and the
// ids follow together, so that a reader takes them in one string: a
// snapshot carrying millions of timers stays small and loads fast.
func (e *encoder) coldDue(ids []string, dues []int64) {
	at := e.begin(opColdDue)
	e.uvarint(uint64(len(ids)))
	prev := uint64(0)
	for i, id := range ids {
		e.uvarint(uint64(dues[i]) - prev)
		e.uvarint(uint64(len(id)))
		prev = uint64(dues[i])
	}
	for _, id := range ids {
		e.b = append(e.b, id...)
	}
	e.end(at)
}

// count writes the length of a slice that may be nil, as decoder.count
// reads it: 0 for nil, else the length plus one.
func (e *encoder) count(n int, isNil bool) {
	if isNil {
		e.uvarint(0)
	} else {
		e.uvarint(uint64(n) + 1)
	}
}

func (e *encoder) idempotency(r *escrow.IdempotencyRecord) {
	at := e.begin(opIdempotency)
	e.str(r.Key)
	e.str(r.Request)
	e.count(len(r.Result), r.Result == nil)
	e.b = append(e.b, r.Result...)
	e.time(r.At)
	e.end(at)
}

func (e *encoder) deleteIdempotency(key string) {
	at := e.begin(opDeleteIdempotency)
	e.str(key)
	e.end(at)
}

// op is one decoded operation: kind says which field holds it.
type op struct {
	kind    byte
	account escrow.Account
	balance escrow.Balance
	escrow  escrow.Escrow
	entry   escrow.Entry
	event   escrow.Event
	idem    escrow.IdempotencyRecord
	rating  escrow.Rating
	agg     escrow.Aggregate
	pair    escrow.PairMonth
	mark    escrow.ItemMark
	day     escrow.DayCount
	cons    escrow.Consumer
	raters  escrow.RaterDays
	// The end of a snapshot: the log sequence number it covers and how many
	// chunks came before it.
	snapSeq, snapChunks uint64
	// The last journal entry and event the cold tables hold.
	snapJournal, snapEvents uint64
	snapWritten             time.Time
	snapTables              []tableRange
	// The escrows of an opColdDue and their due times.
	dueIDs []string
	dueAt  []int64
}

// A tableRange names a cold table by the checkpoints it holds.
type tableRange struct{ lo, hi uint64 }

// decoder reads what encoder writes. It never panics: the first problem
// sets err, after which every read returns a zero value.
type decoder struct {
	b   []byte
	err error
	// version is the format version of the input: 1 to formatVersion.
	version uint32
	// short is set while decoding a framed operation's fields: reading
	// past their end gives zero values, for fields newer than the writer.
	short bool
	// Short strings that recur in every record (currency codes, kinds of
	// entries and events) are shared rather than allocated each time.
	interned map[string]string
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errDecode
	}
	d.b = nil
}

// ended reports whether the fields of a framed operation are used up, so
// that the remaining fields read as zero.
func (d *decoder) ended() bool { return d.short && len(d.b) == 0 }

func (d *decoder) byte() byte {
	if d.ended() {
		return 0
	}
	if len(d.b) == 0 {
		d.fail()
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.ended() {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.ended() {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// small reads an unsigned varint that must fit in max.
func (d *decoder) small(max uint64) uint64 {
	v := d.uvarint()
	if v > max {
		d.fail()
		return 0
	}
	return v
}

func (d *decoder) bytes() []byte {
	if d.ended() {
		return nil
	}
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string { return string(d.bytes()) }

// istr is str for strings worth sharing.
func (d *decoder) istr() string {
	b := d.bytes()
	if len(b) > 32 {
		return string(b)
	}
	if s, ok := d.interned[string(b)]; ok {
		return s
	}
	s := string(b)
	if d.interned == nil {
		d.interned = map[string]string{}
	}
	if len(d.interned) < 1024 {
		d.interned[s] = s
	}
	return s
}

func (d *decoder) bool() bool {
	switch d.byte() {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail()
	return false
}

func (d *decoder) dur() time.Duration { return time.Duration(d.varint()) }

func (d *decoder) time() time.Time {
	switch d.byte() {
	case 0:
		return time.Time{}
	case 1:
		sec := d.varint()
		nsec := d.small(999_999_999)
		return time.Unix(sec, int64(nsec)).UTC()
	}
	d.fail()
	return time.Time{}
}

func (d *decoder) currency() escrow.Currency {
	code := d.istr()
	// A currency has 0 to 9 decimal places; more is damage, and would
	// make formatting an amount absurdly slow.
	minor := d.varint()
	if minor < 0 || minor > 9 {
		d.fail()
		return escrow.Currency{}
	}
	return escrow.Currency{Code: code, Minor: int(minor)}
}

func (d *decoder) money() escrow.Money {
	c := d.currency()
	units := d.varint()
	if c == (escrow.Currency{}) {
		if units != 0 {
			d.fail() // a Money without a currency is always zero
		}
		return escrow.Money{}
	}
	return escrow.RestoreMoney(units, c)
}

// count reads a slice length written as length plus one and checks that
// the remaining input could hold that many items of at least min bytes.
func (d *decoder) count(min int) (n int, isNil bool) {
	v := d.uvarint()
	if v == 0 {
		return 0, d.err == nil
	}
	v--
	if v > uint64(len(d.b)/min) {
		d.fail()
		return 0, false
	}
	return int(v), false
}

// coldDue reads the body of an opColdDue into o.dueIDs and o.dueAt, its
// ids all slices of one string.
func (d *decoder) coldDue(o *op) {
	n := d.uvarint()
	if n > uint64(len(d.b)/2) || n > coldDueBatch {
		d.fail()
		return
	}
	o.dueIDs, o.dueAt = o.dueIDs[:0], o.dueAt[:0]
	lens := make([]int, 0, n) // small: one batch
	total, at := 0, uint64(0)
	for range n {
		at += d.uvarint()
		l := d.uvarint()
		if d.err != nil || l > uint64(len(d.b)) {
			d.fail()
			return
		}
		o.dueAt = append(o.dueAt, int64(at))
		lens = append(lens, int(l))
		total += int(l)
	}
	if total > len(d.b) {
		d.fail()
		return
	}
	all := string(d.b[:total])
	d.b = d.b[total:]
	for _, l := range lens {
		o.dueIDs = append(o.dueIDs, all[:l])
		all = all[l:]
	}
}

// next decodes the next operation into o, reusing o's slices where it can.
// It reports false at the end of the input or on an error (d.err).
func (d *decoder) next(o *op) bool {
	if d.err != nil || len(d.b) == 0 {
		return false
	}
	o.kind = d.byte()
	if d.version < 2 {
		d.fields(o)
		return d.err == nil
	}
	fields := d.bytes()
	if d.err != nil {
		return false
	}
	rest := d.b
	d.b, d.short = fields, true
	d.fields(o)
	if len(d.b) != 0 {
		d.fail() // fields this version does not know
	}
	d.short = false
	if d.err != nil {
		return false
	}
	d.b = rest
	return true
}

// fields decodes the fields of an operation of kind o.kind into o.
func (d *decoder) fields(o *op) {
	switch o.kind {
	case opAccount:
		o.account = escrow.Account{ID: d.str(), System: d.bool(), CreatedAt: d.time()}
	case opBalance:
		o.balance = escrow.Balance{Account: d.str(), Currency: d.currency(), Available: d.money(), Held: d.money()}
	case opEscrow:
		d.escrow(&o.escrow)
	case opEntry:
		d.entry(&o.entry)
	case opEvent:
		o.event = escrow.Event{Seq: d.uvarint(), Type: escrow.EventType(d.istr()), At: d.time(),
			Account: d.str(), Escrow: d.str(), Actor: d.str(), ByTimer: d.bool(),
			State: escrow.State(d.small(255)), Amount: d.money(), Fee: d.money(), Note: d.str()}
		if d.version >= 2 { // version 1 ended here
			o.event.Metadata = d.metadata()
			o.event.Buyer, o.event.Seller = d.str(), d.str()
		}
	case opIdempotency:
		r := &o.idem
		r.Key, r.Request = d.str(), d.str()
		r.Result = nil
		if n, isNil := d.count(1); !isNil && d.err == nil {
			// Count checked n against the remaining input.
			r.Result = append([]byte{}, d.b[:n]...)
			d.b = d.b[n:]
		}
		r.At = d.time()
	case opDeleteIdempotency:
		o.idem = escrow.IdempotencyRecord{Key: d.str()}
	case opRating:
		d.rating(&o.rating)
	case opAggregate:
		d.aggregate(&o.agg)
	case opPairMonth:
		o.pair = escrow.PairMonth{Ratee: d.str(), Rater: d.str(), Month: d.istr(), Positive: d.varint(), Negative: d.varint()}
	case opItemMark:
		if d.version < 4 { // no older version has them
			d.fail()
			return
		}
		o.mark = escrow.ItemMark{Ratee: d.str(), Rater: d.str(), Item: d.str(), Escrow: d.str(), At: d.time()}
	case opDayCount:
		o.day = escrow.DayCount{Party: d.str(), Role: escrow.Role(d.small(255)), Day: d.int32(),
			Positive: d.int32(), Neutral: d.int32(), Negative: d.int32()}
		if d.version >= 4 { // version 3 ended here
			for i := range o.day.DetailSums {
				o.day.DetailSums[i] = d.int32()
			}
			for i := range o.day.DetailCounts {
				o.day.DetailCounts[i] = d.int32()
			}
			o.day.UniquePositive, o.day.UniqueNegative = d.int32(), d.int32()
		}
	case opConsumer:
		o.cons = escrow.Consumer{Name: d.str(), Seq: d.uvarint(), UpdatedAt: d.time()}
	case opRaterDays:
		if d.version < 4 {
			d.fail()
			return
		}
		o.raters = escrow.RaterDays{Ratee: d.str(), Role: escrow.Role(d.small(255)), Rater: d.str()}
		o.raters.Positive, o.raters.Negative = d.days(), d.days()
	case opColdDue:
		d.coldDue(o)
	case opSnapshotEnd:
		o.snapSeq, o.snapChunks = d.uvarint(), d.uvarint()
		if d.version > 1 {
			o.snapJournal, o.snapEvents = d.uvarint(), d.uvarint()
			o.snapWritten = d.time()
			if n, isNil := d.count(2); !isNil && d.err == nil {
				o.snapTables = make([]tableRange, 0, n)
				for range n {
					o.snapTables = append(o.snapTables, tableRange{d.uvarint(), d.uvarint()})
				}
			}
		}
	default:
		d.fail()
	}
}

func (d *decoder) escrow(x *escrow.Escrow) {
	*x = escrow.Escrow{}
	x.ID, x.Buyer, x.Seller, x.Arbiter = d.str(), d.str(), d.str(), d.str()
	x.Price = d.money()
	x.Item = d.str()
	if n, isNil := d.count(3); !isNil && d.err == nil {
		x.Milestones = make([]escrow.Milestone, n)
		for i := range x.Milestones {
			x.Milestones[i] = escrow.Milestone{Name: d.str(), Amount: d.money()}
		}
	}
	x.Timers = escrow.Timers{PayWithin: d.dur(), ShipWithin: d.dur(), ConfirmWithin: d.dur(), RefundResponseWithin: d.dur()}
	x.Fee = escrow.FeeTerms{RatePPM: d.varint(), Fixed: d.money(), Rounding: escrow.Rounding(d.varint())}
	x.State = escrow.State(d.small(255))
	x.Held, x.Released, x.Fees, x.Refunded = d.money(), d.money(), d.money(), d.money()
	x.NextMilestone = int(d.varint())
	x.Tracking = d.str()
	x.Refund = escrow.RefundRequest{Amount: d.money(), Reason: d.str(), At: d.time()}
	x.Resume = escrow.State(d.small(255))
	x.Paused = d.dur()
	x.DueAt = d.time()
	x.DisputeLoser = escrow.Role(d.small(255))
	x.Rated = escrow.Role(d.small(255))
	x.RatingDueAt = d.time()
	x.CreatedAt, x.PaidAt, x.ShippedAt, x.EndedAt, x.UpdatedAt = d.time(), d.time(), d.time(), d.time(), d.time()
	x.Version = d.uvarint()
	if d.version < 2 { // version 1 ended here
		return
	}
	x.Refund.RefuseReason, x.Refund.RefusedAt = d.str(), d.time()
	x.Dispute = escrow.DisputeClaim{By: escrow.Role(d.small(255)), Reason: d.str(), At: d.time()}
	x.Metadata = d.metadata()
	if d.version < 3 { // version 2 ended here
		return
	}
	if n, isNil := d.count(2); !isNil && d.err == nil {
		x.Shipments = make([]escrow.Shipment, n)
		for i := range x.Shipments {
			x.Shipments[i] = escrow.Shipment{Tracking: d.str(), At: d.time()}
		}
	}
	x.Extended = escrow.Extensions{Buyer: d.dur(), Seller: d.dur()}
	x.Return = escrow.Return{Address: d.str(), AgreedAt: d.time(), Tracking: d.str(), ShippedAt: d.time(),
		ReceivedAt: d.time(), RefuseReason: d.str(), RefusedAt: d.time()}
	if n, isNil := d.count(4); !isNil && d.err == nil {
		x.Evidence = make([]escrow.Evidence, n)
		for i := range x.Evidence {
			x.Evidence[i] = escrow.Evidence{By: escrow.Role(d.small(255)), Note: d.str(), Ref: d.str(), At: d.time()}
		}
	}
	x.Cart, x.CartSize = d.str(), int(d.varint())
	x.Dispute.EscalatedAt = d.time()
	t := &x.Timers
	t.ReturnResponseWithin, t.ReturnShipWithin, t.ReturnReceiveWithin, t.ReturnDisputeWithin = d.dur(), d.dur(), d.dur(), d.dur()
	t.ArbiterWithin, t.BuyerExtension, t.SellerExtensionLimit = d.dur(), d.dur(), d.dur()
	if d.version < 4 { // version 3 ended here
		return
	}
	x.SKU = d.str()
}

// metadata reads what encoder.metadata writes. A key twice, or keys out
// of order, is damage.
func (d *decoder) metadata() map[string]string {
	n, isNil := d.count(2)
	if isNil || d.err != nil {
		return nil
	}
	m := make(map[string]string, n)
	last := ""
	for i := range n {
		k, v := d.str(), d.str()
		if d.err != nil || (i > 0 && k <= last) {
			d.fail()
			return nil
		}
		m[k], last = v, k
	}
	return m
}

func (d *decoder) entry(x *escrow.Entry) {
	postings := x.Postings[:0]
	*x = escrow.Entry{Seq: d.uvarint(), At: d.time(), Kind: escrow.EntryKind(d.istr()), Escrow: d.str(), Currency: d.currency()}
	n, isNil := d.count(3)
	if isNil || d.err != nil {
		return
	}
	if postings == nil {
		postings = make([]escrow.Posting, 0, n)
	}
	for range n {
		postings = append(postings, escrow.Posting{Account: d.str(), Bucket: escrow.Bucket(d.small(255)), Change: d.varint()})
	}
	x.Postings = postings
}

// apply performs o through tx, as the transaction that recorded it did.
// Appends must get back the sequence numbers they were first given.
func apply(tx escrow.Tx, o *op) error {
	switch o.kind {
	case opAccount:
		return tx.PutAccount(o.account)
	case opBalance:
		return tx.PutBalance(o.balance)
	case opEscrow:
		return tx.PutEscrow(o.escrow)
	case opEntry:
		want := o.entry.Seq
		if err := tx.AppendEntry(&o.entry); err != nil {
			return err
		}
		if o.entry.Seq != want {
			return fmt.Errorf("%w: journal entry %d replayed as %d", errDecode, want, o.entry.Seq)
		}
	case opEvent:
		want := o.event.Seq
		if err := tx.AppendEvent(&o.event); err != nil {
			return err
		}
		if o.event.Seq != want {
			return fmt.Errorf("%w: event %d replayed as %d", errDecode, want, o.event.Seq)
		}
	case opIdempotency:
		return tx.PutIdempotency(o.idem)
	case opDeleteIdempotency:
		return tx.DeleteIdempotency(o.idem.Key)
	case opRating:
		return tx.PutRating(o.rating)
	case opAggregate:
		return tx.PutAggregate(o.agg)
	case opPairMonth:
		return tx.PutPairMonth(o.pair)
	case opItemMark:
		return tx.PutItemMark(o.mark)
	case opDayCount:
		return tx.PutDayCount(o.day)
	case opConsumer:
		return tx.PutConsumer(o.cons)
	case opRaterDays:
		return tx.PutRaterDays(o.raters)
	case opColdDue:
		// Only snapshots hold it, and load into memstore's own
		// transaction; the log replays through the store's.
		if _, ok := tx.(markTx); ok {
			return fmt.Errorf("%w: operation %#x out of place", errDecode, o.kind)
		}
		return memstore.FileDue(tx, o.dueIDs, o.dueAt)
	default:
		return fmt.Errorf("%w: operation %#x out of place", errDecode, o.kind)
	}
	return nil
}

func (e *encoder) float(f float64) { e.b = binary.LittleEndian.AppendUint64(e.b, math.Float64bits(f)) }

func (e *encoder) rating(r *escrow.Rating) {
	at := e.begin(opRating)
	e.str(r.Escrow)
	e.str(r.Rater)
	e.str(r.Ratee)
	e.uvarint(uint64(r.RateeRole))
	e.varint(int64(r.Score))
	e.varint(int64(r.Details.Described))
	e.varint(int64(r.Details.Communication))
	e.varint(int64(r.Details.Shipping))
	e.str(r.Comment)
	e.time(r.At)
	e.bool(r.Default)
	e.money(r.Value)
	e.float(r.Weight)
	e.bool(r.Revised)
	e.varint(int64(r.Original))
	e.time(r.RevisedAt)
	e.str(r.Reply)
	e.time(r.RepliedAt)
	e.bool(r.Counted)
	e.str(r.Reason)
	e.varint(r.Points)
	// Added in format version 4 (see the top of this file).
	e.bool(r.Withdrawn)
	e.time(r.WithdrawnAt)
	e.bool(r.Voided)
	e.str(r.VoidedBy)
	e.str(r.VoidReason)
	e.time(r.VoidedAt)
	e.end(at)
}

func (e *encoder) aggregate(a *escrow.Aggregate) {
	at := e.begin(opAggregate)
	e.str(a.Party)
	e.uvarint(uint64(a.Role))
	e.varint(a.Points)
	e.varint(a.Positive)
	e.varint(a.Neutral)
	e.varint(a.Negative)
	for _, w := range a.Windows {
		e.varint(w.Positive)
		e.varint(w.Neutral)
		e.varint(w.Negative)
	}
	e.varint(int64(a.WindowsDay))
	e.float(a.BetaPositive)
	e.float(a.BetaNegative)
	e.time(a.BetaAt)
	for _, v := range a.DetailSums {
		e.varint(v)
	}
	for _, v := range a.DetailCounts {
		e.varint(v)
	}
	e.float(a.Wilson)
	e.float(a.Expectation)
	e.time(a.UpdatedAt)
	e.varint(int64(a.RekeyDay))
	// Added in format version 4 (see the top of this file).
	for _, v := range a.DetailWindowSums {
		e.varint(v)
	}
	for _, v := range a.DetailWindowCounts {
		e.varint(v)
	}
	e.bool(a.DetailDays)
	e.varint(a.UniquePositive)
	e.varint(a.UniqueNegative)
	e.bool(a.RatersKept)
	e.end(at)
}

func (e *encoder) dayCount(c *escrow.DayCount) {
	at := e.begin(opDayCount)
	e.str(c.Party)
	e.uvarint(uint64(c.Role))
	e.varint(int64(c.Day))
	e.varint(int64(c.Positive))
	e.varint(int64(c.Neutral))
	e.varint(int64(c.Negative))
	// Added in format version 4 (see the top of this file).
	for _, v := range c.DetailSums {
		e.varint(int64(v))
	}
	for _, v := range c.DetailCounts {
		e.varint(int64(v))
	}
	e.varint(int64(c.UniquePositive))
	e.varint(int64(c.UniqueNegative))
	e.end(at)
}

func (e *encoder) consumer(c *escrow.Consumer) {
	at := e.begin(opConsumer)
	e.str(c.Name)
	e.uvarint(c.Seq)
	e.time(c.UpdatedAt)
	e.end(at)
}

func (e *encoder) raterDays(r *escrow.RaterDays) {
	at := e.begin(opRaterDays)
	e.str(r.Ratee)
	e.uvarint(uint64(r.Role))
	e.str(r.Rater)
	for _, days := range [2][]int32{r.Positive, r.Negative} {
		e.count(len(days), days == nil)
		for _, d := range days {
			e.varint(int64(d))
		}
	}
	e.end(at)
}

// days reads a list of days that raterDays wrote.
func (d *decoder) days() []int32 {
	n, isNil := d.count(1)
	if isNil || d.err != nil {
		return nil
	}
	days := make([]int32, n)
	for i := range days {
		days[i] = d.int32()
	}
	return days
}

func (e *encoder) pairMonth(p *escrow.PairMonth) {
	at := e.begin(opPairMonth)
	e.str(p.Ratee)
	e.str(p.Rater)
	e.str(p.Month)
	e.varint(p.Positive)
	e.varint(p.Negative)
	e.end(at)
}

func (e *encoder) itemMark(m *escrow.ItemMark) {
	at := e.begin(opItemMark)
	e.str(m.Ratee)
	e.str(m.Rater)
	e.str(m.Item)
	e.str(m.Escrow)
	e.time(m.At)
	e.end(at)
}

func (d *decoder) float() float64 {
	if d.ended() {
		return 0
	}
	if len(d.b) < 8 {
		d.fail()
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
	d.b = d.b[8:]
	return v
}

// int8 and int32 read a varint that must fit the type.
func (d *decoder) int8() int8 {
	v := d.varint()
	if v < math.MinInt8 || v > math.MaxInt8 {
		d.fail()
		return 0
	}
	return int8(v)
}

func (d *decoder) int32() int32 {
	v := d.varint()
	if v < math.MinInt32 || v > math.MaxInt32 {
		d.fail()
		return 0
	}
	return int32(v)
}

func (d *decoder) rating(r *escrow.Rating) {
	*r = escrow.Rating{Escrow: d.str(), Rater: d.str(), Ratee: d.str(), RateeRole: escrow.Role(d.small(255)),
		Score: escrow.Score(d.int8()), Details: escrow.Details{Described: d.int8(), Communication: d.int8(), Shipping: d.int8()},
		Comment: d.str(), At: d.time(), Default: d.bool(), Value: d.money(), Weight: d.float(),
		Revised: d.bool(), Original: escrow.Score(d.int8()), RevisedAt: d.time(), Reply: d.str(), RepliedAt: d.time(),
		Counted: d.bool(), Reason: d.istr(), Points: d.varint()}
	if d.version < 4 { // version 3 ended here
		return
	}
	r.Withdrawn, r.WithdrawnAt = d.bool(), d.time()
	r.Voided, r.VoidedBy, r.VoidReason, r.VoidedAt = d.bool(), d.str(), d.str(), d.time()
}

func (d *decoder) aggregate(a *escrow.Aggregate) {
	*a = escrow.Aggregate{Party: d.str(), Role: escrow.Role(d.small(255)), Points: d.varint(),
		Positive: d.varint(), Neutral: d.varint(), Negative: d.varint()}
	for i := range a.Windows {
		a.Windows[i] = escrow.Counts{Positive: d.varint(), Neutral: d.varint(), Negative: d.varint()}
	}
	a.WindowsDay = d.int32()
	a.BetaPositive, a.BetaNegative, a.BetaAt = d.float(), d.float(), d.time()
	for i := range a.DetailSums {
		a.DetailSums[i] = d.varint()
	}
	for i := range a.DetailCounts {
		a.DetailCounts[i] = d.varint()
	}
	a.Wilson, a.Expectation, a.UpdatedAt = d.float(), d.float(), d.time()
	if d.version >= 2 { // version 1 ended here
		a.RekeyDay = d.int32()
	} else if a.Windows != ([5]escrow.Counts{}) {
		// Version 1 predates re-keying. File an aggregate with ratings in
		// its windows as the ledger would have: due the day after its
		// windows were last brought up to date, so that ProcessDue
		// catches up its ranking keys.
		a.RekeyDay = a.WindowsDay + 1
	}
	if d.version < 4 { // version 3 ended here
		return
	}
	for i := range a.DetailWindowSums {
		a.DetailWindowSums[i] = d.varint()
	}
	for i := range a.DetailWindowCounts {
		a.DetailWindowCounts[i] = d.varint()
	}
	a.DetailDays = d.bool()
	a.UniquePositive, a.UniqueNegative = d.varint(), d.varint()
	a.RatersKept = d.bool()
}
