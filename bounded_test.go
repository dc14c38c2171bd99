package escrow_test

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
	"testing"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/memstore"
	"github.com/escrowkit/escrow/storage/storagetest"
)

// TestMessagesBounded: an error that repeats what a caller sent names it
// by its first bytes and its length, so that a 2 MB amount, ID or word
// makes a short message; the typed error's fields keep it whole, and the
// refused call changes nothing.
func TestMessagesBounded(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	defer store.Close()
	l, err := escrow.New(ctx, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"alice", "alice2"} {
		if _, err := l.OpenAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	dump := func() string {
		b, err := storagetest.Dump(ctx, store)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	huge := strings.Repeat("9", 2<<20)
	word := strings.Repeat("w", 2<<20)
	const limit = 1024
	// check fails the test unless err's message is short and names the
	// length sent, and field, if not nil, gives back what was sent.
	check := func(name string, err error, sent string, field func(error) string) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: no error", name)
		}
		msg := err.Error()
		if len(msg) > limit {
			t.Errorf("%s: a message of %d bytes: %.200s…", name, len(msg), msg)
		}
		if n := fmt.Sprintf("(%d bytes)", len(sent)); !strings.HasPrefix(msg, "escrow: ") || !strings.Contains(msg, n) {
			t.Errorf("%s: %.300s; want it to say %s", name, msg, n)
		}
		if field != nil && field(err) != sent {
			t.Errorf("%s: the error's field does not keep what was sent whole", name)
		}
	}
	amount := func(err error) string {
		var e *escrow.AmountError
		errors.As(err, &e)
		return e.Amount
	}
	currency := func(err error) string {
		var e *escrow.AmountError
		errors.As(err, &e)
		return e.Currency
	}
	_, err = escrow.ParseMoney(huge+".123", escrow.CNY)
	check("ParseMoney", err, huge+".123", amount)
	check("AmountError", &escrow.AmountError{Amount: huge, Currency: "CNY", Reason: "too large", Err: escrow.ErrAmountTooLarge}, huge, amount)
	check("AmountError of a currency", &escrow.AmountError{Currency: word, Reason: "not in the ledger's registry",
		Err: escrow.ErrUnknownCurrency}, word, currency)
	var m escrow.Money
	check("Money of a long currency", m.UnmarshalJSON([]byte(`{"amount":"1.00","currency":"`+word+`"}`)), word, nil)
	var st escrow.State
	check("State", st.UnmarshalText([]byte(word)), word, func(err error) string {
		var e *escrow.EnumError
		errors.As(err, &e)
		return e.Text
	})
	before := dump()
	_, err = l.OpenAccount(ctx, word)
	check("OpenAccount", err, word, nil)
	_, err = l.Open(ctx, escrow.Terms{ID: "e1", Buyer: "alice", Seller: "alice2", Price: escrow.MustParseMoney("1.00", escrow.CNY),
		Metadata: map[string]string{word: "v"}})
	check("Open with a long metadata key", err, word, func(err error) string {
		var e *escrow.MetadataError
		errors.As(err, &e)
		return e.Key
	})
	_, err = l.Escrows(ctx, escrow.EscrowQuery{Party: "alice", Cursor: word})
	check("Escrows with a long cursor", err, word, nil)
	if after := dump(); after != before {
		t.Error("a refused call changed the store")
	}
	if _, err := l.Open(ctx, escrow.Terms{ID: "e2", Buyer: "alice", Seller: "alice2", Price: escrow.MustParseMoney("1.00", escrow.CNY)}); err != nil {
		t.Fatal(err)
	}
	before = dump()
	_, err = l.Pay(ctx, "e2", word)
	check("Pay by a long actor", err, word, nil)
	// A TopSellers cursor whose checksum holds, but whose score no
	// ranking writes.
	cursor := rankCursor("top_sellers/"+strconv.Itoa(int(escrow.RankWilson)), "2", word)
	_, err = l.TopSellers(ctx, escrow.RankWilson, escrow.Page{Cursor: cursor})
	check("TopSellers with a long cursor", err, cursor, nil)
	if after := dump(); after != before {
		t.Error("a refused call changed the store")
	}
	var timers escrow.Timers
	check("Timers with a long duration", json.Unmarshal([]byte(`{"pay_within":"`+huge+`"}`), &timers), huge, nil)
	key := strings.Repeat("k", 256) // the longest key the ledger takes
	check("IdempotencyMismatchError", &escrow.IdempotencyMismatchError{Key: key, Call: "pay", Escrow: "e1"}, key, nil)
}

// rankCursor builds a ranking's cursor as the ledger writes one: the
// listing and each field, with their lengths, and a CRC-32 of them.
func rankCursor(listing string, fields ...string) string {
	b := binary.AppendUvarint(nil, uint64(len(listing)))
	b = append(b, listing...)
	for _, f := range fields {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return base64.RawURLEncoding.EncodeToString(binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b)))
}
