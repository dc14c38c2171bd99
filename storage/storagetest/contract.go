package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// testContract holds the adapter to the escrow.Storage and escrow.Tx
// contract directly, method by method, without a Ledger in between, so that
// a broken rule is reported where it is broken rather than as a wrong
// balance three calls later.
func testContract(t *testing.T, h Harness) {
	t.Run("Empty", func(t *testing.T) { contractEmpty(t, h) })
	t.Run("Accounts", func(t *testing.T) { contractAccounts(t, h) })
	t.Run("Balances", func(t *testing.T) { contractBalances(t, h) })
	t.Run("Escrows", func(t *testing.T) { contractEscrows(t, h) })
	t.Run("Idempotencies", func(t *testing.T) { contractIdempotencies(t, h) })
	t.Run("IdempotenciesUntil", func(t *testing.T) { contractIdempotenciesUntil(t, h) })
	t.Run("Journal", func(t *testing.T) { contractJournalEntries(t, h) })
	t.Run("Events", func(t *testing.T) { contractEventLog(t, h) })
	t.Run("EscrowEvents", func(t *testing.T) { contractEscrowEvents(t, h) })
	t.Run("PartyEscrows", func(t *testing.T) { contractPartyEscrows(t, h) })
	t.Run("Consumers", func(t *testing.T) { contractConsumers(t, h) })
	t.Run("DueEscrows", func(t *testing.T) { contractDueEscrows(t, h) })
	t.Run("DueEscrowsSurviveRollback", func(t *testing.T) { contractDueRollback(t, h) })
	t.Run("UpdateSeesItsOwnWrites", func(t *testing.T) { contractOwnWrites(t, h) })
	t.Run("UpdateRollsBackOnError", func(t *testing.T) { contractRollbackOnError(t, h) })
	t.Run("UpdateRollsBackOnPanic", func(t *testing.T) { contractRollbackOnPanic(t, h) })
	t.Run("View", func(t *testing.T) { contractViewReadOnly(t, h) })
	t.Run("NoAliasing", func(t *testing.T) { contractNoAliasing(t, h) })
	t.Run("Close", func(t *testing.T) { contractClose(t, h) })
	t.Run("CancelledContext", func(t *testing.T) { contractCancelled(t, h) })
	t.Run("ConcurrentTransactions", func(t *testing.T) { contractConcurrent(t, h) })
	t.Run("TxEndsWithItsTransaction", func(t *testing.T) { contractTxEnds(t, h) })
}

// contractOpts compares records read back with the records written: times
// as instants (cmp uses time.Time.Equal, so an adapter may hand a time back
// in another location, and Money.Equal likewise), and a nil slice the same
// as an empty one, since a nil Milestones may well come back empty.
var contractOpts = cmp.Options{
	cmpopts.EquateEmpty(),
}

// errContractStop is what scan callbacks return to stop a scan.
var errContractStop = errors.New("storagetest: scan stopped by the test")

// errContractAbort is what a transaction returns to be rolled back.
var errContractAbort = errors.New("storagetest: transaction aborted by the test")

// contractPanic is the value a transaction panics with; tests compare the
// recovered value by pointer, so only a re-panic with the same value passes.
type contractPanic struct{ reason string }

func contractUpdate(t *testing.T, s escrow.Storage, fn func(tx escrow.Tx) error) {
	t.Helper()
	if err := s.Update(context.Background(), fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func contractView(t *testing.T, s escrow.Storage, fn func(tx escrow.Tx) error) {
	t.Helper()
	if err := s.View(context.Background(), fn); err != nil {
		t.Fatalf("View: %v", err)
	}
}

func contractDump(t *testing.T, s escrow.Storage) []byte {
	t.Helper()
	d, err := Dump(context.Background(), s)
	if err != nil {
		t.Fatalf("Dump: %v", err)
	}
	return d
}

func contractUnchanged(t *testing.T, s escrow.Storage, before []byte, what string) {
	t.Helper()
	if after := contractDump(t, s); !bytes.Equal(before, after) {
		t.Fatalf("%s changed the store:\nbefore: %.3000s\nafter: %.3000s", what, before, after)
	}
}

// contractCollect returns every record a scan method visits, in order.
func contractCollect[T any](scan func(func(T) error) error) ([]T, error) {
	out := []T{}
	err := scan(func(v T) error {
		out = append(out, v)
		return nil
	})
	return out, err
}

// contractStops checks that scan stops at the first error its callback
// returns, and returns that error. The store must hold at least three
// records, so that a scan that carries on is caught.
func contractStops[T any](t *testing.T, what string, scan func(func(T) error) error) {
	t.Helper()
	calls := 0
	err := scan(func(T) error {
		calls++
		if calls == 2 {
			return errContractStop
		}
		return nil
	})
	if !errors.Is(err, errContractStop) {
		t.Errorf("%s: callback failed, scan returned %v, want %v", what, err, errContractStop)
	}
	if calls != 2 {
		t.Errorf("%s: callback failed on call 2 but was called %d times", what, calls)
	}
}

func contractNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, escrow.ErrNotFound) {
		t.Errorf("%s: got error %v, want one wrapping ErrNotFound", what, err)
	}
}

func contractDiff(t *testing.T, what string, want, got any) {
	t.Helper()
	if diff := cmp.Diff(want, got, contractOpts); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", what, diff)
	}
}

// Times in these tests are whole seconds in UTC or a fixed zone, so that an
// adapter storing microseconds (PostgreSQL) round-trips them exactly.

func contractEscrow(id string, due time.Time) escrow.Escrow {
	return escrow.Escrow{
		Terms: escrow.Terms{
			ID: id, Buyer: "alice", Seller: "bob", Arbiter: "carol",
			Price: cny("300.00"), Item: "a cast-iron teapot, 1.2 L", SKU: "TP-1200-BLK",
			Milestones: []escrow.Milestone{
				{Name: "deposit", Amount: cny("100.00")},
				{Name: "delivery", Amount: cny("200.00")},
			},
			Timers:   escrow.DefaultTimers(),
			Metadata: map[string]string{"order": "A-1001", "gift note": "red ribbon,\nno invoice"},
		},
		Fee:           escrow.FeeTerms{RatePPM: 6000, Fixed: cny("1.00"), Rounding: escrow.RoundHalfUp},
		State:         escrow.AwaitingConfirmation,
		Held:          cny("150.00"),
		Released:      cny("100.00"),
		Fees:          cny("1.60"),
		Refunded:      cny("50.00"),
		NextMilestone: 1,
		Tracking:      "SF1234567890",
		Refund: escrow.RefundRequest{Amount: cny("50.00"), Reason: "lid chipped", At: start.Add(3 * time.Hour),
			RefuseReason: "it left here whole", RefusedAt: start.Add(4 * time.Hour)},
		Dispute:   escrow.DisputeClaim{By: escrow.Buyer, Reason: "see the photos", At: start.Add(5 * time.Hour)},
		Resume:    escrow.AwaitingConfirmation,
		Paused:    36 * time.Hour,
		DueAt:     due,
		CreatedAt: start,
		PaidAt:    start.Add(time.Hour),
		ShippedAt: start.Add(2 * time.Hour),
		UpdatedAt: start.Add(4 * time.Hour),
		Version:   6,
	}
}

// contractJournal returns five entries, without Seq: deposits to alice and
// bob, a hold that posts to alice twice, a release and a withdrawal.
func contractJournal() []escrow.Entry {
	avail, held := escrow.Available, escrow.Held
	return []escrow.Entry{
		{At: start, Kind: escrow.EntryDeposit, Currency: escrow.CNY, Postings: []escrow.Posting{
			{Account: escrow.WorldAccount, Bucket: avail, Change: -100000},
			{Account: "alice", Bucket: avail, Change: 100000},
		}},
		{At: start.Add(time.Minute), Kind: escrow.EntryDeposit, Currency: escrow.CNY, Postings: []escrow.Posting{
			{Account: escrow.WorldAccount, Bucket: avail, Change: -50000},
			{Account: "bob", Bucket: avail, Change: 50000},
		}},
		{At: start.Add(2 * time.Minute), Kind: escrow.EntryHold, Escrow: "e-1", Currency: escrow.CNY, Postings: []escrow.Posting{
			{Account: "alice", Bucket: avail, Change: -30000},
			{Account: "alice", Bucket: held, Change: 30000},
		}},
		{At: start.Add(3 * time.Minute), Kind: escrow.EntryRelease, Escrow: "e-1", Currency: escrow.CNY, Postings: []escrow.Posting{
			{Account: "alice", Bucket: held, Change: -30000},
			{Account: "bob", Bucket: avail, Change: 29820},
			{Account: escrow.FeeAccount, Bucket: avail, Change: 180},
		}},
		{At: start.Add(4 * time.Minute), Kind: escrow.EntryWithdrawal, Currency: escrow.CNY, Postings: []escrow.Posting{
			{Account: "bob", Bucket: avail, Change: -20000},
			{Account: escrow.WorldAccount, Bucket: avail, Change: 20000},
		}},
	}
}

// contractEvents returns five events, without Seq; those of the escrow
// carry its metadata.
func contractEvents() []escrow.Event {
	md := map[string]string{"order": "A-1001", "channel": "app"}
	return []escrow.Event{
		{Type: escrow.AccountOpened, At: start, Account: "alice", Actor: "alice"},
		{Type: escrow.Deposited, At: start.Add(time.Minute), Account: "alice", Actor: "alice", Amount: cny("1000.00")},
		{Type: escrow.EscrowOpened, At: start.Add(2 * time.Minute), Escrow: "e-1", Buyer: "alice", Seller: "bob", Actor: "alice",
			State: escrow.AwaitingPayment, Amount: cny("300.00"), Note: "a cast-iron teapot", Metadata: md},
		{Type: escrow.EscrowPaid, At: start.Add(3 * time.Minute), Escrow: "e-1", Buyer: "alice", Seller: "bob", Actor: "alice",
			State: escrow.AwaitingShipment, Amount: cny("300.00"), Metadata: md},
		{Type: escrow.EscrowReleased, At: start.Add(4 * time.Minute), Escrow: "e-1", Buyer: "alice", Seller: "bob", ByTimer: true,
			State: escrow.Completed, Amount: cny("300.00"), Fee: cny("1.80"), Note: "auto-confirm", Metadata: md},
	}
}

func contractIdem(key string, at time.Time) escrow.IdempotencyRecord {
	return escrow.IdempotencyRecord{
		Key:     key,
		Request: "deposit|alice|10.00 CNY|" + key,
		Result:  []byte(`{"Account":"alice","Available":{"amount":"10.00","currency":"CNY"}}`),
		At:      at,
	}
}

// contractSeed commits records of every kind: three accounts, two
// balances, two escrows on the due index, two entries, two events and an
// idempotency record.
func contractSeed(t *testing.T, s escrow.Storage) {
	t.Helper()
	contractUpdate(t, s, func(tx escrow.Tx) error {
		for _, a := range []escrow.Account{
			{ID: escrow.WorldAccount, System: true, CreatedAt: start},
			{ID: "alice", CreatedAt: start},
			{ID: "bob", CreatedAt: start},
		} {
			if err := tx.PutAccount(a); err != nil {
				return err
			}
		}
		if err := tx.PutBalance(escrow.Balance{Account: "alice", Currency: escrow.CNY, Available: cny("700.00"), Held: cny("300.00")}); err != nil {
			return err
		}
		if err := tx.PutBalance(escrow.Balance{Account: "bob", Currency: escrow.CNY, Available: cny("500.00"), Held: cny("0.00")}); err != nil {
			return err
		}
		if err := tx.PutEscrow(contractEscrow("e-1", start.Add(time.Hour))); err != nil {
			return err
		}
		if err := tx.PutEscrow(contractEscrow("e-2", start.Add(2*time.Hour))); err != nil {
			return err
		}
		for _, e := range contractJournal()[:2] {
			if err := tx.AppendEntry(&e); err != nil {
				return err
			}
		}
		for _, ev := range contractEvents()[:2] {
			if err := tx.AppendEvent(&ev); err != nil {
				return err
			}
		}
		return tx.PutIdempotency(contractIdem("k1", start))
	})
}

func contractEmpty(t *testing.T, h Harness) {
	s := open(t, h)
	contractView(t, s, func(tx escrow.Tx) error {
		_, err := tx.Account("alice")
		contractNotFound(t, "Account on an empty store", err)
		_, err = tx.Balance("alice", "CNY")
		contractNotFound(t, "Balance on an empty store", err)
		_, err = tx.Escrow("e-1")
		contractNotFound(t, "Escrow on an empty store", err)
		_, err = tx.Idempotency("k1")
		contractNotFound(t, "Idempotency on an empty store", err)

		fail := func(string) error { return errors.New("callback called on an empty store") }
		if err := tx.Accounts(func(a escrow.Account) error { return fail(a.ID) }); err != nil {
			t.Errorf("Accounts: %v", err)
		}
		if err := tx.Balances(func(b escrow.Balance) error { return fail(b.Account) }); err != nil {
			t.Errorf("Balances: %v", err)
		}
		if err := tx.Escrows(func(e escrow.Escrow) error { return fail(e.ID) }); err != nil {
			t.Errorf("Escrows: %v", err)
		}
		if err := tx.Idempotencies(func(r escrow.IdempotencyRecord) error { return fail(r.Key) }); err != nil {
			t.Errorf("Idempotencies: %v", err)
		}

		due, err := tx.DueEscrows(maxTime, 100)
		if err != nil || due == nil || len(due) != 0 {
			t.Errorf("DueEscrows on an empty store = %#v, %v; want an empty slice", due, err)
		}
		entries, err := tx.Entries("alice", 0, 100)
		if err != nil || entries == nil || len(entries) != 0 {
			t.Errorf("Entries on an empty store = %#v, %v; want an empty slice", entries, err)
		}
		events, err := tx.Events(0, 100)
		if err != nil || events == nil || len(events) != 0 {
			t.Errorf("Events on an empty store = %#v, %v; want an empty slice", events, err)
		}
		return nil
	})
}

func contractAccounts(t *testing.T, h Harness) {
	s := open(t, h)
	want := []escrow.Account{
		{ID: escrow.WorldAccount, System: true, CreatedAt: start},
		{ID: "alice", CreatedAt: start.Add(time.Minute)},
		{ID: "bob", CreatedAt: start.Add(2 * time.Minute)},
		{ID: "bob2", CreatedAt: start.Add(3 * time.Minute)},
	}
	// Written out of order, so that the ascending order is the store's doing.
	contractUpdate(t, s, func(tx escrow.Tx) error {
		for _, i := range []int{3, 1, 0, 2} {
			if err := tx.PutAccount(want[i]); err != nil {
				return err
			}
		}
		return nil
	})
	check := func() {
		t.Helper()
		contractView(t, s, func(tx escrow.Tx) error {
			for _, a := range want {
				got, err := tx.Account(a.ID)
				if err != nil {
					return fmt.Errorf("Account(%q): %w", a.ID, err)
				}
				contractDiff(t, "Account("+a.ID+")", a, got)
			}
			got, err := contractCollect(tx.Accounts)
			if err != nil {
				return fmt.Errorf("Accounts: %w", err)
			}
			contractDiff(t, "Accounts", want, got)
			_, err = tx.Account("carol")
			contractNotFound(t, `Account("carol")`, err)
			_, err = tx.Account("ALICE")
			contractNotFound(t, `Account("ALICE")`, err)
			contractStops(t, "Accounts", tx.Accounts)
			return nil
		})
	}
	check()

	// Replacing keeps one record under the ID, with the new content.
	want[1].CreatedAt = start.Add(time.Hour)
	contractUpdate(t, s, func(tx escrow.Tx) error { return tx.PutAccount(want[1]) })
	check()
}

func contractBalances(t *testing.T, h Harness) {
	s := open(t, h)
	// Ordered by account, then currency. "a" < "a-b" < "ab": an adapter that
	// sorts on account+"/"+currency puts "a-b/…" before "a/…" and fails.
	want := []escrow.Balance{
		{Account: "a", Currency: escrow.CNY, Available: cny("10.00"), Held: cny("0.00")},
		{Account: "a", Currency: escrow.USD, Available: escrow.MustParseMoney("2.50", escrow.USD), Held: escrow.MustParseMoney("0.25", escrow.USD)},
		{Account: "a-b", Currency: escrow.CNY, Available: cny("0.01"), Held: cny("99.99")},
		{Account: "ab", Currency: escrow.EUR, Available: escrow.MustParseMoney("7.00", escrow.EUR), Held: escrow.MustParseMoney("0.00", escrow.EUR)},
		{Account: "b", Currency: escrow.CNY, Available: cny("123456789.12"), Held: cny("0.00")},
		{Account: "b", Currency: escrow.JPY, Available: escrow.MustParseMoney("5000", escrow.JPY), Held: escrow.MustParseMoney("300", escrow.JPY)},
	}
	contractUpdate(t, s, func(tx escrow.Tx) error {
		for _, i := range []int{5, 2, 0, 4, 1, 3} {
			if err := tx.PutBalance(want[i]); err != nil {
				return err
			}
		}
		return nil
	})
	check := func() {
		t.Helper()
		contractView(t, s, func(tx escrow.Tx) error {
			for _, b := range want {
				got, err := tx.Balance(b.Account, b.Currency.Code)
				if err != nil {
					return fmt.Errorf("Balance(%q, %q): %w", b.Account, b.Currency.Code, err)
				}
				contractDiff(t, "Balance("+b.Account+", "+b.Currency.Code+")", b, got)
			}
			got, err := contractCollect(tx.Balances)
			if err != nil {
				return fmt.Errorf("Balances: %w", err)
			}
			contractDiff(t, "Balances", want, got)
			for _, k := range [][2]string{{"a", "EUR"}, {"ab", "CNY"}, {"c", "CNY"}, {"b", "cny"}} {
				_, err := tx.Balance(k[0], k[1])
				contractNotFound(t, fmt.Sprintf("Balance(%q, %q)", k[0], k[1]), err)
			}
			contractStops(t, "Balances", tx.Balances)
			for _, account := range []string{"a", "a-b", "ab", "b", "c", ""} {
				got, err := tx.AccountBalances(account)
				if err != nil {
					return fmt.Errorf("AccountBalances(%q): %w", account, err)
				}
				if got == nil {
					t.Errorf("AccountBalances(%q) = nil, want an empty slice", account)
				}
				mine := []escrow.Balance{}
				for _, b := range want {
					if b.Account == account {
						mine = append(mine, b)
					}
				}
				contractDiff(t, fmt.Sprintf("AccountBalances(%q)", account), mine, got)
			}
			return nil
		})
	}
	check()

	want[2].Available, want[2].Held = cny("50.00"), cny("50.00")
	contractUpdate(t, s, func(tx escrow.Tx) error { return tx.PutBalance(want[2]) })
	check()
}

func contractEscrows(t *testing.T, h Harness) {
	s := open(t, h)
	// "e-1" < "e-10" < "e-2" as strings: the order is by ID, not by number.
	want := []escrow.Escrow{
		contractEscrow("e-1", start.Add(time.Hour)),
		contractEscrow("e-10", time.Time{}),
		contractEscrow("e-2", start.Add(2*time.Hour)),
	}
	// One with nothing optional: no milestones, metadata, refusal or dispute.
	want[1].Milestones, want[1].Metadata = nil, nil
	want[1].Refund, want[1].Dispute = escrow.RefundRequest{}, escrow.DisputeClaim{}
	want[1].State = escrow.AwaitingPayment
	contractUpdate(t, s, func(tx escrow.Tx) error {
		for _, i := range []int{2, 0, 1} {
			if err := tx.PutEscrow(want[i]); err != nil {
				return err
			}
		}
		return nil
	})
	check := func() {
		t.Helper()
		contractView(t, s, func(tx escrow.Tx) error {
			for _, e := range want {
				got, err := tx.Escrow(e.ID)
				if err != nil {
					return fmt.Errorf("Escrow(%q): %w", e.ID, err)
				}
				contractDiff(t, "Escrow("+e.ID+")", e, got)
			}
			got, err := contractCollect(tx.Escrows)
			if err != nil {
				return fmt.Errorf("Escrows: %w", err)
			}
			contractDiff(t, "Escrows", want, got)
			_, err = tx.Escrow("e-3")
			contractNotFound(t, `Escrow("e-3")`, err)
			contractStops(t, "Escrows", tx.Escrows)
			return nil
		})
	}
	check()

	// A replacement may change everything, the number of milestones and
	// the metadata too.
	want[0].State = escrow.Completed
	want[0].Milestones = append(want[0].Milestones, escrow.Milestone{Name: "bonus", Amount: cny("0.01")})
	want[0].Metadata = map[string]string{"order": "A-1001-R"}
	want[0].Held, want[0].Released = cny("0.00"), cny("300.01")
	want[0].Version++
	contractUpdate(t, s, func(tx escrow.Tx) error { return tx.PutEscrow(want[0]) })
	check()
}

func contractIdempotencies(t *testing.T, h Harness) {
	s := open(t, h)
	want := []escrow.IdempotencyRecord{
		contractIdem("k1", start),
		contractIdem("k2", start.Add(time.Second)),
		contractIdem("k3", start.Add(2*time.Second)),
	}
	want[2].Result = nil // a call whose result is empty
	contractUpdate(t, s, func(tx escrow.Tx) error {
		for _, i := range []int{1, 2, 0} {
			if err := tx.PutIdempotency(want[i]); err != nil {
				return err
			}
		}
		return nil
	})
	check := func() {
		t.Helper()
		contractView(t, s, func(tx escrow.Tx) error {
			for _, r := range want {
				got, err := tx.Idempotency(r.Key)
				if err != nil {
					return fmt.Errorf("Idempotency(%q): %w", r.Key, err)
				}
				contractDiff(t, "Idempotency("+r.Key+")", r, got)
			}
			got, err := contractCollect(tx.Idempotencies)
			if err != nil {
				return fmt.Errorf("Idempotencies: %w", err)
			}
			contractDiff(t, "Idempotencies", want, got)
			_, err = tx.Idempotency("k4")
			contractNotFound(t, `Idempotency("k4")`, err)
			contractStops(t, "Idempotencies", tx.Idempotencies)
			return nil
		})
	}
	check()

	want[0].Request = "withdraw|alice|1.00 CNY"
	want[0].Result = []byte(`{"replaced":true}`)
	want[0].At = start.Add(time.Hour)
	contractUpdate(t, s, func(tx escrow.Tx) error { return tx.PutIdempotency(want[0]) })
	check()
}

// contractIdemUntil reads IdempotenciesUntil(at, limit) in a View.
func contractIdemUntil(t *testing.T, s escrow.Storage, at time.Time, limit int) []string {
	t.Helper()
	var got []string
	contractView(t, s, func(tx escrow.Tx) error {
		var err error
		got, err = tx.IdempotenciesUntil(at, limit)
		if err == nil && got == nil {
			t.Errorf("IdempotenciesUntil(%v, %d) = nil, want an empty slice", at, limit)
		}
		return err
	})
	return got
}

func contractIdempotenciesUntil(t *testing.T, h Harness) {
	s := open(t, h)
	contractDiff(t, "IdempotenciesUntil on an empty store", []string{}, contractIdemUntil(t, s, maxTime, 100))
	contractUpdate(t, s, func(tx escrow.Tx) error { return tx.DeleteIdempotency("k-missing") })

	at := func(d time.Duration) time.Time { return start.Add(d) }
	// k-a and k-b were made at the same instant, k-a's written in UTC+8.
	china := time.FixedZone("CST", 8*60*60)
	made := map[string]time.Time{
		"k-c": at(time.Hour), "k-a": at(2 * time.Hour).In(china), "k-b": at(2 * time.Hour),
		"k-d": at(3 * time.Hour), "k-early": at(-24 * time.Hour),
	}
	contractUpdate(t, s, func(tx escrow.Tx) error {
		for _, k := range []string{"k-d", "k-b", "k-c", "k-early", "k-a"} {
			if err := tx.PutIdempotency(contractIdem(k, made[k])); err != nil {
				return err
			}
		}
		return nil
	})
	tests := []struct {
		at    time.Time
		limit int
		want  []string
	}{
		{maxTime, 100, []string{"k-early", "k-c", "k-a", "k-b", "k-d"}},
		{maxTime, 3, []string{"k-early", "k-c", "k-a"}},
		{maxTime, 0, []string{}},
		{at(2 * time.Hour), 100, []string{"k-early", "k-c", "k-a", "k-b"}}, // made at exactly t
		{at(2*time.Hour - time.Second), 100, []string{"k-early", "k-c"}},
		{at(-48 * time.Hour), 100, []string{}},
	}
	for _, tc := range tests {
		got := contractIdemUntil(t, s, tc.at, tc.limit)
		contractDiff(t, fmt.Sprintf("IdempotenciesUntil(%v, %d)", tc.at, tc.limit), tc.want, got)
	}

	// A failed Update that deletes, replaces and adds changes nothing.
	before := contractDump(t, s)
	err := s.Update(context.Background(), func(tx escrow.Tx) error {
		if err := tx.DeleteIdempotency("k-a"); err != nil {
			return err
		}
		if err := tx.PutIdempotency(contractIdem("k-early", at(5*time.Hour))); err != nil {
			return err
		}
		if err := tx.PutIdempotency(contractIdem("k-new", at(-time.Hour))); err != nil {
			return err
		}
		got, err := tx.IdempotenciesUntil(maxTime, 100)
		contractDiff(t, "IdempotenciesUntil inside the transaction", []string{"k-new", "k-c", "k-b", "k-d", "k-early"}, got)
		if err != nil {
			return err
		}
		return errContractAbort
	})
	if !errors.Is(err, errContractAbort) {
		t.Fatalf("Update returned %v, want %v", err, errContractAbort)
	}
	contractUnchanged(t, s, before, "a failed Update of idempotency records")

	// Replacing a record refiles it by its new At; deleting one removes it
	// from the index and from Idempotency; deleting a missing key is nil.
	contractUpdate(t, s, func(tx escrow.Tx) error {
		if err := tx.PutIdempotency(contractIdem("k-early", at(4*time.Hour))); err != nil {
			return err
		}
		if err := tx.DeleteIdempotency("k-c"); err != nil {
			return err
		}
		return tx.DeleteIdempotency("k-missing")
	})
	contractDiff(t, "IdempotenciesUntil after a replace and a delete",
		[]string{"k-a", "k-b", "k-d", "k-early"}, contractIdemUntil(t, s, maxTime, 100))
	contractView(t, s, func(tx escrow.Tx) error {
		_, err := tx.Idempotency("k-c")
		contractNotFound(t, "Idempotency(k-c) after DeleteIdempotency", err)
		got, err := contractCollect(tx.Idempotencies)
		keys := []string{}
		for _, r := range got {
			keys = append(keys, r.Key)
		}
		contractDiff(t, "Idempotencies after DeleteIdempotency", []string{"k-a", "k-b", "k-d", "k-early"}, keys)
		return err
	})
}

func contractJournalEntries(t *testing.T, h Harness) {
	s := open(t, h)
	want := contractJournal()
	for i := range want {
		want[i].Seq = uint64(i + 1)
	}
	// Two transactions: the sequence carries on across commits.
	appendAll := func(from, to int) {
		t.Helper()
		contractUpdate(t, s, func(tx escrow.Tx) error {
			for i, e := range contractJournal()[from:to] {
				e.Seq = 42 // whatever the caller sets is overwritten
				if err := tx.AppendEntry(&e); err != nil {
					return err
				}
				appendedSeq(t, tx, "AppendEntry", e.Seq, uint64(from+i+1))
			}
			return nil
		})
	}
	appendAll(0, 3)
	appendAll(3, 5)

	tests := []struct {
		account string
		after   uint64
		limit   int
		want    []uint64
	}{
		{"alice", 0, 100, []uint64{1, 3, 4}}, // entry 3 posts to alice twice: once here
		{"bob", 0, 100, []uint64{2, 4, 5}},
		{escrow.WorldAccount, 0, 100, []uint64{1, 2, 5}},
		{escrow.FeeAccount, 0, 100, []uint64{4}},
		{"alice", 1, 100, []uint64{3, 4}},
		{"alice", 2, 100, []uint64{3, 4}}, // a cursor need not be one of the account's entries
		{"alice", 3, 100, []uint64{4}},
		{"alice", 4, 100, []uint64{}},
		{"alice", 99, 100, []uint64{}},
		{"alice", 0, 2, []uint64{1, 3}},
		{"alice", 1, 1, []uint64{3}},
		{"bob", 0, 3, []uint64{2, 4, 5}},
		{"alice", 0, 0, []uint64{}},
		{"carol", 0, 100, []uint64{}},
	}
	contractView(t, s, func(tx escrow.Tx) error {
		for _, tc := range tests {
			got, err := tx.Entries(tc.account, tc.after, tc.limit)
			what := fmt.Sprintf("Entries(%q, %d, %d)", tc.account, tc.after, tc.limit)
			if err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			if got == nil {
				t.Errorf("%s = nil, want an empty slice", what)
			}
			wantEntries := []escrow.Entry{}
			for _, seq := range tc.want {
				wantEntries = append(wantEntries, want[seq-1])
			}
			contractDiff(t, what, wantEntries, got)
		}

		// Paging one entry at a time with the last Seq as the cursor reads
		// every entry exactly once.
		var paged []uint64
		for after := uint64(0); ; {
			page, err := tx.Entries(escrow.WorldAccount, after, 1)
			if err != nil {
				return err
			}
			if len(page) == 0 {
				break
			}
			if len(page) != 1 || len(paged) > 10 {
				return fmt.Errorf("paging with limit 1 got pages %v then %d entries", paged, len(page))
			}
			after = page[0].Seq
			paged = append(paged, after)
		}
		contractDiff(t, "Seqs paged from @world", []uint64{1, 2, 5}, paged)

		// Journal reads every account's entries in Seq order.
		for _, tc := range []struct {
			after uint64
			limit int
			want  []escrow.Entry
		}{
			{0, 100, want},
			{2, 100, want[2:]},
			{1, 2, want[1:3]},
			{5, 100, []escrow.Entry{}},
			{0, 0, []escrow.Entry{}},
		} {
			got, err := tx.Journal(tc.after, tc.limit)
			if err != nil {
				return err
			}
			if got == nil {
				t.Errorf("Journal(%d, %d) = nil, want an empty slice", tc.after, tc.limit)
			}
			contractDiff(t, fmt.Sprintf("Journal(%d, %d)", tc.after, tc.limit), tc.want, got)
		}
		return nil
	})
}

func contractEventLog(t *testing.T, h Harness) {
	s := open(t, h)
	want := contractEvents()
	for i := range want {
		want[i].Seq = uint64(i + 1)
	}
	appendAll := func(from, to int) {
		t.Helper()
		contractUpdate(t, s, func(tx escrow.Tx) error {
			for i, ev := range contractEvents()[from:to] {
				ev.Seq = 42
				if err := tx.AppendEvent(&ev); err != nil {
					return err
				}
				appendedSeq(t, tx, "AppendEvent", ev.Seq, uint64(from+i+1))
			}
			return nil
		})
	}
	appendAll(0, 2)
	appendAll(2, 5)

	tests := []struct {
		after uint64
		limit int
		want  []uint64
	}{
		{0, 100, []uint64{1, 2, 3, 4, 5}},
		{0, 5, []uint64{1, 2, 3, 4, 5}},
		{0, 2, []uint64{1, 2}},
		{2, 2, []uint64{3, 4}},
		{4, 100, []uint64{5}},
		{5, 100, []uint64{}},
		{99, 100, []uint64{}},
		{0, 0, []uint64{}},
	}
	contractView(t, s, func(tx escrow.Tx) error {
		for _, tc := range tests {
			got, err := tx.Events(tc.after, tc.limit)
			what := fmt.Sprintf("Events(%d, %d)", tc.after, tc.limit)
			if err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			if got == nil {
				t.Errorf("%s = nil, want an empty slice", what)
			}
			wantEvents := []escrow.Event{}
			for _, seq := range tc.want {
				wantEvents = append(wantEvents, want[seq-1])
			}
			contractDiff(t, what, wantEvents, got)
		}
		return nil
	})
}

// contractDue reads DueEscrows(at, limit) in a View.
func contractDue(t *testing.T, s escrow.Storage, at time.Time, limit int) []string {
	t.Helper()
	var got []string
	contractView(t, s, func(tx escrow.Tx) error {
		var err error
		got, err = tx.DueEscrows(at, limit)
		if err == nil && got == nil {
			t.Errorf("DueEscrows(%v, %d) = nil, want an empty slice", at, limit)
		}
		return err
	})
	return got
}

func contractDueEscrows(t *testing.T, h Harness) {
	s := open(t, h)
	at := func(d time.Duration) time.Time { return start.Add(d) }
	// e-a and e-b fall due at the same instant, e-a's written in UTC+8: an
	// adapter that orders formatted local times puts e-b first and fails.
	china := time.FixedZone("CST", 8*60*60)
	dues := map[string]time.Time{
		"e-c":     at(time.Hour),
		"e-a":     at(2 * time.Hour).In(china),
		"e-b":     at(2 * time.Hour),
		"e-d":     at(3 * time.Hour),
		"e-early": at(-24 * time.Hour),
		"e-none":  {},
	}
	contractUpdate(t, s, func(tx escrow.Tx) error {
		for _, id := range []string{"e-d", "e-b", "e-none", "e-c", "e-early", "e-a"} {
			if err := tx.PutEscrow(contractEscrow(id, dues[id])); err != nil {
				return err
			}
		}
		return nil
	})
	// Putting an escrow again under the same deadline must not file it twice.
	contractUpdate(t, s, func(tx escrow.Tx) error { return tx.PutEscrow(contractEscrow("e-d", dues["e-d"])) })

	tests := []struct {
		at    time.Time
		limit int
		want  []string
	}{
		{maxTime, 100, []string{"e-early", "e-c", "e-a", "e-b", "e-d"}},
		{maxTime, 5, []string{"e-early", "e-c", "e-a", "e-b", "e-d"}},
		{maxTime, 3, []string{"e-early", "e-c", "e-a"}},
		{maxTime, 1, []string{"e-early"}},
		{maxTime, 0, []string{}},
		{at(2 * time.Hour), 100, []string{"e-early", "e-c", "e-a", "e-b"}}, // due at exactly t
		{at(2 * time.Hour).In(china), 100, []string{"e-early", "e-c", "e-a", "e-b"}},
		{at(2*time.Hour - time.Second), 100, []string{"e-early", "e-c"}},
		{at(time.Hour), 100, []string{"e-early", "e-c"}},
		{at(0), 100, []string{"e-early"}},
		{at(-48 * time.Hour), 100, []string{}},
		{time.Time{}, 100, []string{}},
	}
	for _, tc := range tests {
		got := contractDue(t, s, tc.at, tc.limit)
		contractDiff(t, fmt.Sprintf("DueEscrows(%v, %d)", tc.at, tc.limit), tc.want, got)
	}

	// Moving deadlines: e-early goes last, e-c stops running, e-none starts.
	contractUpdate(t, s, func(tx escrow.Tx) error {
		for id, due := range map[string]time.Time{"e-early": at(4 * time.Hour), "e-c": {}, "e-none": at(3 * time.Hour)} {
			e, err := tx.Escrow(id)
			if err != nil {
				return err
			}
			e.DueAt = due
			if err := tx.PutEscrow(e); err != nil {
				return err
			}
		}
		return nil
	})
	contractDiff(t, "DueEscrows after moving deadlines",
		[]string{"e-a", "e-b", "e-d", "e-none", "e-early"}, contractDue(t, s, maxTime, 100))
	contractDiff(t, "DueEscrows at 1h after moving deadlines", []string{}, contractDue(t, s, at(time.Hour), 100))
	contractView(t, s, func(tx escrow.Tx) error {
		e, err := tx.Escrow("e-c")
		if err != nil {
			return err
		}
		if !e.DueAt.IsZero() {
			t.Errorf("e-c DueAt = %v after clearing it, want zero", e.DueAt)
		}
		return nil
	})
}

func contractDueRollback(t *testing.T, h Harness) {
	s := open(t, h)
	contractSeed(t, s) // e-1 due at 1h, e-2 at 2h
	want := []string{"e-1", "e-2"}
	contractDiff(t, "DueEscrows after seeding", want, contractDue(t, s, maxTime, 100))
	before := contractDump(t, s)

	move := func(tx escrow.Tx) error {
		e1, err := tx.Escrow("e-1")
		if err != nil {
			return err
		}
		e1.DueAt = time.Time{}
		if err := tx.PutEscrow(e1); err != nil {
			return err
		}
		e2, err := tx.Escrow("e-2")
		if err != nil {
			return err
		}
		e2.DueAt = start.Add(-time.Hour)
		if err := tx.PutEscrow(e2); err != nil {
			return err
		}
		if err := tx.PutEscrow(contractEscrow("e-0", start)); err != nil {
			return err
		}
		got, err := tx.DueEscrows(maxTime, 100)
		if err != nil {
			return err
		}
		contractDiff(t, "DueEscrows inside the transaction", []string{"e-2", "e-0"}, got)
		return nil
	}

	err := s.Update(context.Background(), func(tx escrow.Tx) error {
		if err := move(tx); err != nil {
			return err
		}
		return errContractAbort
	})
	if !errors.Is(err, errContractAbort) {
		t.Fatalf("Update returned %v, want %v", err, errContractAbort)
	}
	contractDiff(t, "DueEscrows after a failed Update", want, contractDue(t, s, maxTime, 100))
	contractUnchanged(t, s, before, "a failed Update")

	pv := &contractPanic{"due index"}
	got := contractRecover(func() {
		_ = s.Update(context.Background(), func(tx escrow.Tx) error {
			if err := move(tx); err != nil {
				return err
			}
			panic(pv)
		})
	})
	if got != pv {
		t.Fatalf("Update re-panicked with %v, want %v", got, pv)
	}
	contractDiff(t, "DueEscrows after a panicking Update", want, contractDue(t, s, maxTime, 100))
	contractUnchanged(t, s, before, "a panicking Update")
}

// contractRecover runs fn and returns what it panicked with, or nil.
func contractRecover(fn func()) (v any) {
	defer func() { v = recover() }()
	fn()
	return nil
}

func contractOwnWrites(t *testing.T, h Harness) {
	s := open(t, h)
	contractSeed(t, s)
	carol := escrow.Account{ID: "carol", CreatedAt: start.Add(time.Hour)}
	b := escrow.Balance{Account: "alice", Currency: escrow.CNY, Available: cny("400.00"), Held: cny("600.00")}
	e := contractEscrow("e-3", start.Add(-time.Minute))
	entry := contractJournal()[2]
	ev := contractEvents()[2]
	r := contractIdem("k2", start.Add(time.Hour))
	contractUpdate(t, s, func(tx escrow.Tx) error {
		// The ledger reads a balance back after writing it when an entry
		// posts to one account twice, so reads must see the transaction's
		// own writes.
		if err := tx.PutAccount(carol); err != nil {
			return err
		}
		gotA, err := tx.Account("carol")
		if err != nil {
			return fmt.Errorf("Account after PutAccount: %w", err)
		}
		contractDiff(t, "Account after PutAccount", carol, gotA)

		if err := tx.PutBalance(b); err != nil {
			return err
		}
		gotB, err := tx.Balance("alice", "CNY")
		if err != nil {
			return fmt.Errorf("Balance after PutBalance: %w", err)
		}
		contractDiff(t, "Balance after PutBalance", b, gotB)

		if err := tx.PutEscrow(e); err != nil {
			return err
		}
		gotE, err := tx.Escrow("e-3")
		if err != nil {
			return fmt.Errorf("Escrow after PutEscrow: %w", err)
		}
		contractDiff(t, "Escrow after PutEscrow", e, gotE)
		due, err := tx.DueEscrows(maxTime, 100)
		if err != nil {
			return err
		}
		contractDiff(t, "DueEscrows after PutEscrow", []string{"e-3", "e-1", "e-2"}, due)

		if err := tx.AppendEntry(&entry); err != nil {
			return err
		}
		entries, err := tx.Entries("alice", 0, 100)
		if err != nil {
			return err
		}
		if ptx, late := tx.(escrow.PendingTx); late {
			// A Publisher numbers the entry after the commit: until then
			// it is pending, not in the journal.
			appendedSeq(t, tx, "AppendEntry", entry.Seq, 3)
			if len(entries) != 1 || entries[0].Seq != 1 {
				t.Errorf("Entries(alice) after AppendEntry = %+v, want only entry 1 before the commit", entries)
			}
			pending, err := ptx.PendingEntries()
			if err != nil {
				return err
			}
			contractDiff(t, "PendingEntries after AppendEntry", []escrow.Entry{entry}, pending)
		} else if len(entries) != 2 || entries[1].Seq != 3 {
			t.Errorf("Entries(alice) after AppendEntry = %+v, want 2 entries ending with Seq 3", entries)
		} else {
			contractDiff(t, "Entry after AppendEntry", entry, entries[1])
		}

		if err := tx.AppendEvent(&ev); err != nil {
			return err
		}
		events, err := tx.Events(2, 100)
		if err != nil {
			return err
		}
		if _, late := tx.(escrow.PendingTx); late {
			appendedSeq(t, tx, "AppendEvent", ev.Seq, 3)
			contractDiff(t, "Events after AppendEvent, before the commit", []escrow.Event{}, events)
		} else {
			contractDiff(t, "Events after AppendEvent", []escrow.Event{ev}, events)
		}

		if err := tx.PutIdempotency(r); err != nil {
			return err
		}
		gotR, err := tx.Idempotency("k2")
		if err != nil {
			return fmt.Errorf("Idempotency after PutIdempotency: %w", err)
		}
		contractDiff(t, "Idempotency after PutIdempotency", r, gotR)
		return nil
	})

	// And the commit keeps every one of them as written, and numbers the
	// entry and the event if the store had not.
	entry.Seq, ev.Seq = 3, 3
	contractView(t, s, func(tx escrow.Tx) error {
		gotA, err := tx.Account("carol")
		if err != nil {
			return fmt.Errorf("Account(carol) after commit: %w", err)
		}
		contractDiff(t, "Account after commit", carol, gotA)
		gotB, err := tx.Balance("alice", "CNY")
		if err != nil {
			return fmt.Errorf("Balance(alice) after commit: %w", err)
		}
		contractDiff(t, "Balance after commit", b, gotB)
		gotE, err := tx.Escrow("e-3")
		if err != nil {
			return fmt.Errorf("Escrow(e-3) after commit: %w", err)
		}
		contractDiff(t, "Escrow after commit", e, gotE)
		entries, err := tx.Entries("alice", 2, 100)
		if err != nil {
			return err
		}
		contractDiff(t, "Entries after commit", []escrow.Entry{entry}, entries)
		events, err := tx.Events(2, 100)
		if err != nil {
			return err
		}
		contractDiff(t, "Events after commit", []escrow.Event{ev}, events)
		gotR, err := tx.Idempotency("k2")
		if err != nil {
			return fmt.Errorf("Idempotency(k2) after commit: %w", err)
		}
		contractDiff(t, "Idempotency after commit", r, gotR)
		return nil
	})
}

// contractWriteEverything writes records of every kind over a seeded store,
// new ones and replacements, and checks the Seqs it is given. The caller
// then makes the transaction fail.
func contractWriteEverything(t *testing.T, tx escrow.Tx) error {
	t.Helper()
	writes := []func() error{
		func() error { return tx.PutAccount(escrow.Account{ID: "carol", CreatedAt: start}) },
		func() error { return tx.PutAccount(escrow.Account{ID: "alice", CreatedAt: start.Add(time.Hour)}) },
		func() error {
			return tx.PutBalance(escrow.Balance{Account: "alice", Currency: escrow.CNY, Available: cny("1.00"), Held: cny("2.00")})
		},
		func() error {
			return tx.PutBalance(escrow.Balance{Account: "carol", Currency: escrow.USD, Available: escrow.MustParseMoney("3.00", escrow.USD)})
		},
		func() error {
			e, err := tx.Escrow("e-1")
			if err != nil {
				return err
			}
			e.State, e.DueAt, e.Version = escrow.Completed, time.Time{}, e.Version+1
			return tx.PutEscrow(e)
		},
		func() error { return tx.PutEscrow(contractEscrow("e-3", start.Add(-time.Hour))) },
		func() error {
			e := contractJournal()[2]
			if err := tx.AppendEntry(&e); err != nil {
				return err
			}
			appendedSeq(t, tx, "AppendEntry in the failing transaction", e.Seq, 3)
			return nil
		},
		func() error {
			e := escrow.Entry{At: start, Kind: escrow.EntryDeposit, Currency: escrow.CNY, Postings: []escrow.Posting{
				{Account: escrow.WorldAccount, Bucket: escrow.Available, Change: -1},
				{Account: "carol", Bucket: escrow.Available, Change: 1},
			}}
			return tx.AppendEntry(&e)
		},
		func() error {
			ev := contractEvents()[2]
			if err := tx.AppendEvent(&ev); err != nil {
				return err
			}
			appendedSeq(t, tx, "AppendEvent in the failing transaction", ev.Seq, 3)
			return nil
		},
		func() error { return tx.PutIdempotency(contractIdem("k1", start.Add(time.Hour))) },
		func() error { return tx.PutIdempotency(contractIdem("k2", start)) },
		func() error { return tx.PutConsumer(escrow.Consumer{Name: "mailer", Seq: 3, UpdatedAt: start}) },
	}
	for _, w := range writes {
		if err := w(); err != nil {
			return err
		}
	}
	return nil
}

// contractNoGaps checks that the next entry and event after a rolled-back
// transaction take Seq 3, the numbers the failed one had used.
func contractNoGaps(t *testing.T, s escrow.Storage) {
	t.Helper()
	contractUpdate(t, s, func(tx escrow.Tx) error {
		e := contractJournal()[2]
		if err := tx.AppendEntry(&e); err != nil {
			return err
		}
		ev := contractEvents()[2]
		if err := tx.AppendEvent(&ev); err != nil {
			return err
		}
		appendedSeq(t, tx, "AppendEntry after a rollback", e.Seq, 3)
		appendedSeq(t, tx, "AppendEvent after a rollback", ev.Seq, 3)
		return nil
	})
	contractView(t, s, func(tx escrow.Tx) error {
		events, err := tx.Events(0, 100)
		if err != nil {
			return err
		}
		var seqs []uint64
		for _, ev := range events {
			seqs = append(seqs, ev.Seq)
		}
		contractDiff(t, "event Seqs", []uint64{1, 2, 3}, seqs)
		entries, err := tx.Entries("alice", 0, 100)
		if err != nil {
			return err
		}
		seqs = nil
		for _, e := range entries {
			seqs = append(seqs, e.Seq)
		}
		contractDiff(t, "alice's entry Seqs", []uint64{1, 3}, seqs)
		entries, err = tx.Entries("carol", 0, 100)
		if err != nil {
			return err
		}
		if len(entries) != 0 {
			t.Errorf("carol has %d entries from a rolled-back transaction", len(entries))
		}
		return nil
	})
}

func contractRollbackOnError(t *testing.T, h Harness) {
	s := open(t, h)
	contractSeed(t, s)
	before := contractDump(t, s)
	err := s.Update(context.Background(), func(tx escrow.Tx) error {
		if err := contractWriteEverything(t, tx); err != nil {
			return err
		}
		return fmt.Errorf("giving up: %w", errContractAbort)
	})
	if !errors.Is(err, errContractAbort) {
		t.Fatalf("Update returned %v, want fn's error %v", err, errContractAbort)
	}
	contractUnchanged(t, s, before, "an Update that failed")
	contractView(t, s, func(tx escrow.Tx) error {
		_, err := tx.Account("carol")
		contractNotFound(t, "Account(carol) after rollback", err)
		_, err = tx.Balance("carol", "USD")
		contractNotFound(t, "Balance(carol, USD) after rollback", err)
		_, err = tx.Escrow("e-3")
		contractNotFound(t, "Escrow(e-3) after rollback", err)
		_, err = tx.Idempotency("k2")
		contractNotFound(t, "Idempotency(k2) after rollback", err)
		return nil
	})
	contractNoGaps(t, s)
}

func contractRollbackOnPanic(t *testing.T, h Harness) {
	s := open(t, h)
	contractSeed(t, s)
	before := contractDump(t, s)
	pv := &contractPanic{"rollback"}
	got := contractRecover(func() {
		err := s.Update(context.Background(), func(tx escrow.Tx) error {
			if err := contractWriteEverything(t, tx); err != nil {
				return err
			}
			panic(pv)
		})
		t.Errorf("Update returned %v instead of re-panicking", err)
	})
	if got != pv {
		t.Fatalf("Update re-panicked with %#v, want %#v", got, pv)
	}
	// The store must still work: a lock held by the panicking transaction
	// would hang here.
	contractUnchanged(t, s, before, "an Update that panicked")
	contractNoGaps(t, s)
}

func contractViewReadOnly(t *testing.T, h Harness) {
	s := open(t, h)
	contractSeed(t, s)
	before := contractDump(t, s)
	contractView(t, s, func(tx escrow.Tx) error {
		// View sees what was committed.
		a, err := tx.Account("alice")
		if err != nil {
			return err
		}
		contractDiff(t, "Account(alice) in View", escrow.Account{ID: "alice", CreatedAt: start}, a)
		b, err := tx.Balance("alice", "CNY")
		if err != nil {
			return err
		}
		if b.Available.Units() != 70000 || b.Held.Units() != 30000 {
			t.Errorf("Balance(alice) in View = %v + %v held, want 700.00 + 300.00", b.Available, b.Held)
		}

		entry, ev := contractJournal()[2], contractEvents()[2]
		writes := map[string]error{
			"PutAccount":        tx.PutAccount(escrow.Account{ID: "carol", CreatedAt: start}),
			"PutBalance":        tx.PutBalance(escrow.Balance{Account: "alice", Currency: escrow.CNY, Available: cny("1.00"), Held: cny("0.00")}),
			"PutEscrow":         tx.PutEscrow(contractEscrow("e-3", start)),
			"AppendEntry":       tx.AppendEntry(&entry),
			"AppendEvent":       tx.AppendEvent(&ev),
			"PutIdempotency":    tx.PutIdempotency(contractIdem("k2", start)),
			"DeleteIdempotency": tx.DeleteIdempotency("k1"),
		}
		for name, err := range writes {
			if !errors.Is(err, escrow.ErrReadOnly) {
				t.Errorf("%s in View returned %v, want ErrReadOnly", name, err)
			}
		}
		// The refused writes are not visible in the View either.
		if _, err := tx.Account("carol"); !errors.Is(err, escrow.ErrNotFound) {
			t.Errorf("Account(carol) after a refused PutAccount: %v, want ErrNotFound", err)
		}
		return nil
	})
	contractUnchanged(t, s, before, "writes in a View")

	err := s.View(context.Background(), func(escrow.Tx) error { return errContractStop })
	if !errors.Is(err, errContractStop) {
		t.Errorf("View returned %v, want fn's error %v", err, errContractStop)
	}
}

func contractNoAliasing(t *testing.T, h Harness) {
	s := open(t, h)
	wantE := contractEscrow("e-1", start.Add(time.Hour))
	wantEntry := contractJournal()[3]
	wantEntry.Seq = 1
	wantR := contractIdem("k1", start)

	wantEv := contractEvents()[2]
	wantEv.Seq = 1

	// scribble changes every element of the slices and maps in place.
	scribbleMap := func(m map[string]string) {
		for k := range m {
			m[k] = "scribbled"
		}
		if m != nil {
			m["scribbled"] = "yes"
		}
	}
	scribbleE := func(e *escrow.Escrow) {
		for i := range e.Milestones {
			e.Milestones[i] = escrow.Milestone{Name: "scribbled", Amount: cny("0.01")}
		}
		scribbleMap(e.Metadata)
	}
	scribbleEntry := func(e *escrow.Entry) {
		for i := range e.Postings {
			e.Postings[i] = escrow.Posting{Account: "mallory", Bucket: escrow.Held, Change: 1}
		}
	}
	scribbleR := func(r *escrow.IdempotencyRecord) {
		for i := range r.Result {
			r.Result[i] = 'X'
		}
	}
	check := func(tx escrow.Tx, when string) error {
		t.Helper()
		e, err := tx.Escrow("e-1")
		if err != nil {
			return err
		}
		contractDiff(t, "Escrow "+when, wantE, e)
		scribbleE(&e)
		entries, err := tx.Entries("alice", 0, 10)
		if err != nil {
			return err
		}
		// A Publisher's writing transaction holds its entry pending and
		// does not see its event; both are numbered at the commit.
		wantEntry, wantEvents := wantEntry, []escrow.Event{wantEv}
		if ptx, late := tx.(escrow.PendingTx); late {
			pending, err := ptx.PendingEntries()
			if err != nil {
				return err
			}
			if len(pending) > 0 {
				wantEntry.Seq, wantEvents = 0, []escrow.Event{}
			}
			entries = append(entries, pending...)
		}
		contractDiff(t, "Entries "+when, []escrow.Entry{wantEntry}, entries)
		for i := range entries {
			scribbleEntry(&entries[i])
		}
		r, err := tx.Idempotency("k1")
		if err != nil {
			return err
		}
		contractDiff(t, "Idempotency "+when, wantR, r)
		scribbleR(&r)
		events, err := tx.Events(0, 10)
		if err != nil {
			return err
		}
		contractDiff(t, "Events "+when, wantEvents, events)
		for i := range events {
			scribbleMap(events[i].Metadata)
		}
		// The scans hand out copies too.
		if err := tx.Escrows(func(e escrow.Escrow) error { scribbleE(&e); return nil }); err != nil {
			return err
		}
		return tx.Idempotencies(func(r escrow.IdempotencyRecord) error { scribbleR(&r); return nil })
	}

	contractUpdate(t, s, func(tx escrow.Tx) error {
		e, entry, r := contractEscrow("e-1", start.Add(time.Hour)), contractJournal()[3], contractIdem("k1", start)
		if err := tx.PutEscrow(e); err != nil {
			return err
		}
		if err := tx.AppendEntry(&entry); err != nil {
			return err
		}
		if err := tx.PutIdempotency(r); err != nil {
			return err
		}
		ev := contractEvents()[2]
		if err := tx.AppendEvent(&ev); err != nil {
			return err
		}
		// Before the commit: an adapter that buffers writes must have
		// copied them already.
		scribbleMap(ev.Metadata)
		scribbleE(&e)
		scribbleEntry(&entry)
		scribbleR(&r)
		if err := check(tx, "in the writing transaction"); err != nil {
			return err
		}
		return check(tx, "read again in the writing transaction")
	})
	contractView(t, s, func(tx escrow.Tx) error {
		if err := check(tx, "after commit"); err != nil {
			return err
		}
		return check(tx, "read again after commit")
	})
}

func contractClose(t *testing.T, h Harness) {
	s := open(t, h)
	contractSeed(t, s)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v, want nil", err)
	}
	called := false
	err := s.Update(context.Background(), func(escrow.Tx) error { called = true; return nil })
	if !errors.Is(err, escrow.ErrClosed) || called {
		t.Errorf("Update after Close = %v (fn called: %t), want ErrClosed without calling fn", err, called)
	}
	err = s.View(context.Background(), func(escrow.Tx) error { called = true; return nil })
	if !errors.Is(err, escrow.ErrClosed) || called {
		t.Errorf("View after Close = %v (fn called: %t), want ErrClosed without calling fn", err, called)
	}
	// The store is closed whatever the context says: ErrClosed, not the
	// context's error, which would invite a retry.
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	err = s.Update(cancelled, func(escrow.Tx) error { called = true; return nil })
	if !errors.Is(err, escrow.ErrClosed) || called {
		t.Errorf("Update after Close with a cancelled context = %v (fn called: %t), want ErrClosed without calling fn", err, called)
	}
	err = s.View(cancelled, func(escrow.Tx) error { called = true; return nil })
	if !errors.Is(err, escrow.ErrClosed) || called {
		t.Errorf("View after Close with a cancelled context = %v (fn called: %t), want ErrClosed without calling fn", err, called)
	}
}

func contractCancelled(t *testing.T, h Harness) {
	s := open(t, h)
	contractSeed(t, s)
	before := contractDump(t, s)

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), start)
	defer cancel2()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		want error
	}{
		{"cancelled", cancelled, context.Canceled},
		{"past deadline", expired, context.DeadlineExceeded},
	} {
		called := false
		err := s.Update(tc.ctx, func(tx escrow.Tx) error {
			called = true
			return tx.PutAccount(escrow.Account{ID: "carol", CreatedAt: start})
		})
		if !errors.Is(err, tc.want) || called {
			t.Errorf("Update with a %s context = %v (fn called: %t), want %v without calling fn", tc.name, err, called, tc.want)
		}
		err = s.View(tc.ctx, func(escrow.Tx) error { called = true; return nil })
		if !errors.Is(err, tc.want) || called {
			t.Errorf("View with a %s context = %v (fn called: %t), want %v without calling fn", tc.name, err, called, tc.want)
		}
	}
	contractUnchanged(t, s, before, "transactions with a done context")
}

func contractConcurrent(t *testing.T, h Harness) {
	s := open(t, h)
	const writers, readers = 8, 3
	perWriter := 50
	if testing.Short() {
		perWriter = 20
	}
	total := int64(writers * perWriter)
	zero := escrow.Balance{Currency: escrow.CNY, Available: fen(0), Held: fen(0)}
	contractUpdate(t, s, func(tx escrow.Tx) error {
		for _, id := range []string{"counter", "mirror"} {
			b := zero
			b.Account = id
			if err := tx.PutBalance(b); err != nil {
				return err
			}
		}
		return nil
	})

	// increment adds one to both balances and appends an event, so that in
	// every committed state counter == mirror == the number of events.
	increment := func(tx escrow.Tx) error {
		c, err := tx.Balance("counter", "CNY")
		if err != nil {
			return err
		}
		m, err := tx.Balance("mirror", "CNY")
		if err != nil {
			return err
		}
		n := c.Available.Units() + 1
		c.Available, m.Available = fen(n), fen(n)
		if err := tx.PutBalance(c); err != nil {
			return err
		}
		if err := tx.PutBalance(m); err != nil {
			return err
		}
		return tx.AppendEvent(&escrow.Event{Type: escrow.Deposited, At: start, Account: "counter", Amount: fen(1)})
	}

	ctx := context.Background()
	var writersWG, readersWG sync.WaitGroup
	done := make(chan struct{})
	for w := 0; w < writers; w++ {
		writersWG.Add(1)
		go func() {
			defer writersWG.Done()
			for i := 0; i < perWriter; i++ {
				for {
					err := s.Update(ctx, increment)
					if errors.Is(err, escrow.ErrConflict) {
						continue // the contract allows giving up on a conflict; the caller retries
					}
					if err != nil {
						t.Errorf("Update: %v", err)
						return
					}
					break
				}
			}
		}()
	}
	for r := 0; r < readers; r++ {
		readersWG.Add(1)
		go func() {
			defer readersWG.Done()
			last := int64(-1)
			for stop := false; !stop; {
				select {
				case <-done:
					stop = true // one more read of the final state
				default:
				}
				err := s.View(ctx, func(tx escrow.Tx) error {
					c, err := tx.Balance("counter", "CNY")
					if err != nil {
						return err
					}
					m, err := tx.Balance("mirror", "CNY")
					if err != nil {
						return err
					}
					n := c.Available.Units()
					if m.Available.Units() != n {
						return fmt.Errorf("snapshot saw counter %d but mirror %d", n, m.Available.Units())
					}
					if n < last {
						return fmt.Errorf("counter went back from %d to %d", last, n)
					}
					last = n
					// The event with Seq n exists and none after it.
					after := uint64(max(n, 1) - 1)
					evs, err := tx.Events(after, 2)
					if err != nil {
						return err
					}
					// A Publisher numbers an event after its commit, so a
					// snapshot may hold the counter's write but not yet the
					// event's number; never a number past the counter, and
					// after the writers' Updates have returned, every one.
					_, late := tx.(escrow.PendingTx)
					if late && !stop && n > 0 && len(evs) == 0 {
						return nil
					}
					if n == 0 && len(evs) != 0 || n > 0 && (len(evs) != 1 || evs[0].Seq != uint64(n)) {
						return fmt.Errorf("snapshot with counter %d saw events %+v after Seq %d", n, evs, after)
					}
					return nil
				})
				if err != nil {
					t.Errorf("View: %v", err)
					return
				}
			}
			if last != total {
				t.Errorf("reader's last view saw %d, want %d", last, total)
			}
		}()
	}
	writersWG.Wait()
	close(done)
	readersWG.Wait()

	contractView(t, s, func(tx escrow.Tx) error {
		for _, id := range []string{"counter", "mirror"} {
			b, err := tx.Balance(id, "CNY")
			if err != nil {
				return err
			}
			if b.Available.Units() != total {
				t.Errorf("%s = %d fen after %d increments, want %d", id, b.Available.Units(), total, total)
			}
		}
		events, err := tx.Events(0, int(total)+10)
		if err != nil {
			return err
		}
		if int64(len(events)) != total {
			return fmt.Errorf("%d events after %d increments, want %d", len(events), total, total)
		}
		for i, ev := range events {
			if ev.Seq != uint64(i+1) {
				return fmt.Errorf("event %d has Seq %d: the sequence has a gap or a repeat", i, ev.Seq)
			}
		}
		return nil
	})
}

// contractTxEnds keeps a Tx past the end of its Update and of its View and
// uses it inside a later Update: every call fails, and nothing it tried to
// write appears, in that transaction or afterwards.
func contractTxEnds(t *testing.T, h Harness) {
	s := open(t, h)
	var leakedW, leakedR escrow.Tx
	contractUpdate(t, s, func(tx escrow.Tx) error { leakedW = tx; return nil })
	contractView(t, s, func(tx escrow.Tx) error { leakedR = tx; return nil })
	ghost := escrow.Account{ID: "ghost", CreatedAt: start}
	contractUpdate(t, s, func(tx escrow.Tx) error {
		for name, leaked := range map[string]escrow.Tx{"Update": leakedW, "View": leakedR} {
			if err := leaked.PutAccount(ghost); err == nil {
				t.Errorf("PutAccount through the Tx of an ended %s succeeded", name)
			}
			if _, err := leaked.Account("ghost"); err == nil {
				t.Errorf("Account through the Tx of an ended %s succeeded", name)
			}
			pages := map[string]func() error{
				"Journal":      func() error { _, err := leaked.Journal(0, 1); return err },
				"Events":       func() error { _, err := leaked.Events(0, 1); return err },
				"Entries":      func() error { _, err := leaked.Entries("ghost", 0, 1); return err },
				"EscrowEvents": func() error { _, err := leaked.EscrowEvents("ghost", 0, 1); return err },
			}
			for read, call := range pages {
				if err := call(); err == nil {
					t.Errorf("%s through the Tx of an ended %s succeeded", read, name)
				}
			}
		}
		if _, err := tx.Account("ghost"); !errors.Is(err, escrow.ErrNotFound) {
			t.Errorf("the running transaction sees a write made through an ended one: %v", err)
		}
		return nil
	})
	contractView(t, s, func(tx escrow.Tx) error {
		if _, err := tx.Account("ghost"); !errors.Is(err, escrow.ErrNotFound) {
			t.Errorf("a write through an ended transaction was committed: %v", err)
		}
		return nil
	})
}

// appendedSeq checks the Seq that an append in tx left in a record: want,
// or zero in the transaction of a Publisher, which numbers the record
// after the commit.
func appendedSeq(t *testing.T, tx escrow.Tx, what string, got, want uint64) {
	t.Helper()
	if _, late := tx.(escrow.PendingTx); late {
		want = 0
	}
	if got != want {
		t.Errorf("%s set Seq %d, want %d", what, got, want)
	}
}
