package pgstore_test

import (
	"cmp"
	"context"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/jackc/pgx/v5"
)

// TestEscrowTradeFields puts escrows holding what the trade's later steps
// keep on them (parts shipped, extensions, a return, evidence, a cart, an
// escalation, the timers that go with them), which the escrows table
// keeps in its doc column, and reads each back whole by every read that
// returns escrows; nil and empty slices each come back as they went in.
func TestEscrowTradeFields(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, newSchema(t))
	defer s.Close()
	at := func(h int) time.Time { return start.Add(time.Duration(h)*time.Hour + 123) }
	const day = 24 * time.Hour
	full := escrow.Escrow{
		Terms: escrow.Terms{ID: "full", Buyer: "ann", Seller: "bob", Arbiter: "arb", Price: fen(9_000), Item: "tea",
			Milestones: []escrow.Milestone{{Name: "all", Amount: fen(9_000)}},
			Timers: escrow.Timers{PayWithin: day, ShipWithin: 2 * day, ConfirmWithin: 3 * day, RefundResponseWithin: 4 * day,
				ReturnResponseWithin: 5 * day, ReturnShipWithin: 6 * day, ReturnReceiveWithin: 7 * day,
				ReturnDisputeWithin: 8 * day, ArbiterWithin: 9 * day, BuyerExtension: 10 * day, SellerExtensionLimit: 11*day + 1},
			Metadata: map[string]string{"order": "1"}},
		State: escrow.Disputed, Held: fen(6_000), Released: fen(3_000), Fees: fen(30), Refunded: fen(0),
		NextMilestone: 0, Tracking: "SF3",
		Shipments: []escrow.Shipment{{Tracking: "SF1", At: at(1)}, {At: at(2)}},
		Extended:  escrow.Extensions{Buyer: 3 * day, Seller: day + 1},
		Refund:    escrow.RefundRequest{Amount: fen(6_000), Reason: "broken", At: at(3)},
		Return: escrow.Return{Address: "1 Dock Road", AgreedAt: at(4), Tracking: "RT1", ShippedAt: at(5),
			ReceivedAt: at(6), RefuseReason: "not ours", RefusedAt: at(7)},
		Dispute: escrow.DisputeClaim{By: escrow.Buyer, Reason: "refused", At: at(8), EscalatedAt: at(9)},
		Evidence: []escrow.Evidence{{By: escrow.Buyer, Note: "photo", Ref: "file:1", At: at(8)},
			{By: escrow.Arbiter, Note: "asked the courier", At: at(9)}},
		Cart: "full", CartSize: 3, Resume: escrow.AwaitingConfirmation, Paused: 36 * time.Hour,
		DueAt: at(10), CreatedAt: at(0), PaidAt: at(0), ShippedAt: at(2), UpdatedAt: at(9), Version: 17,
	}
	empty := escrow.Escrow{Terms: escrow.Terms{ID: "empty", Buyer: "ann", Seller: "cat", Price: fen(1)},
		State: escrow.AwaitingShipment, Shipments: []escrow.Shipment{}, Evidence: []escrow.Evidence{},
		CreatedAt: at(1), Version: 2}
	none := escrow.Escrow{Terms: escrow.Terms{ID: "none", Buyer: "ann", Seller: "dan", Price: fen(2)},
		State: escrow.ReturnShipped, CreatedAt: at(2), Version: 1}
	want := []escrow.Escrow{full, empty, none} // in the order they were created
	err := s.Update(ctx, func(tx escrow.Tx) error {
		for _, e := range want {
			if err := tx.PutEscrow(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	check := func(read string, got []escrow.Escrow) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d escrows, want %d", read, len(got), len(want))
		}
		slices.SortFunc(got, func(a, b escrow.Escrow) int { return cmp.Compare(a.CreatedAt.UnixNano(), b.CreatedAt.UnixNano()) })
		for i := range want {
			if !reflect.DeepEqual(want[i], got[i]) {
				t.Errorf("%s: escrow %s came back as\n%s\nwant\n%s", read, want[i].ID, mustJSON(t, got[i]), mustJSON(t, want[i]))
			}
			if (want[i].Shipments == nil) != (got[i].Shipments == nil) || (want[i].Evidence == nil) != (got[i].Evidence == nil) {
				t.Errorf("%s: escrow %s: nil and empty slices swapped: shipments %#v, evidence %#v",
					read, want[i].ID, got[i].Shipments, got[i].Evidence)
			}
		}
	}
	err = s.View(ctx, func(tx escrow.Tx) error {
		var one, all []escrow.Escrow
		for _, e := range want {
			got, err := tx.Escrow(e.ID)
			if err != nil {
				return err
			}
			one = append(one, got)
		}
		check("Escrow", one)
		if err := tx.Escrows(func(e escrow.Escrow) error { all = append(all, e); return nil }); err != nil {
			return err
		}
		check("Escrows", all)
		page, err := tx.PartyEscrows(escrow.PartyQuery{Party: "ann", Role: escrow.Buyer, Limit: 10})
		if err != nil {
			return err
		}
		check("PartyEscrows", page)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestMigrateDueTimes checks migration 7, which moves the index of the
// escrows' due times to escrow_due: a schema at version 6 holding escrows,
// some due and some not, is migrated on Open, DueEscrows finds the same
// escrows in the same order as before, and later writes keep escrow_due
// in step with the escrows.
func TestMigrateDueTimes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	schema := newSchema(t)
	s := open(t, schema)
	at := func(h int) time.Time { return start.Add(time.Duration(h)*time.Hour + 7) }
	put := func(s escrow.Storage, id string, due time.Time) {
		t.Helper()
		err := s.Update(ctx, func(tx escrow.Tx) error {
			return tx.PutEscrow(escrow.Escrow{Terms: escrow.Terms{ID: id, Buyer: "ann", Seller: "bob", Price: fen(1)},
				State: escrow.AwaitingPayment, DueAt: due, CreatedAt: start, Version: 1})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	due := func(s escrow.Storage, until time.Time) []string {
		t.Helper()
		var ids []string
		err := s.View(ctx, func(tx escrow.Tx) error {
			var err error
			ids, err = tx.DueEscrows(until, 100)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	for i, id := range []string{"c", "a", "d", "b"} {
		put(s, id, at(4-i)) // c at 4h, a at 3h, d at 2h, b at 1h
	}
	put(s, "none", time.Time{})
	s.Close()
	// Back to version 6: the due times indexed on escrows, no escrow_due.
	q := func(name string) string { return pgx.Identifier{schema, name}.Sanitize() }
	for _, sql := range []string{
		`DROP TABLE ` + q("escrow_due"),
		`DROP FUNCTION ` + q("pgstore_stripe_full") + `()`,
		`CREATE INDEX escrows_due ON ` + q("escrows") + ` (next_due, next_due_ns, id) WHERE next_due IS NOT NULL`,
		`ALTER TABLE ` + q("escrows") + ` RESET (fillfactor)`,
		`ALTER TABLE ` + q("balances") + ` RESET (fillfactor)`,
		`DELETE FROM ` + q("pgstore_migrations") + ` WHERE version >= 7`,
	} {
		if _, err := admin.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	s = open(t, schema)
	defer s.Close()
	if got, want := due(s, at(3)), []string{"b", "d", "a"}; !slices.Equal(got, want) {
		t.Fatalf("due by 3h after the migration: %q, want %q", got, want)
	}
	var rows, indexes int
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM `+q("escrow_due")).Scan(&rows); err != nil || rows != 5 {
		t.Fatalf("escrow_due holds %d rows (%v), want one per escrow, 5", rows, err)
	}
	err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND indexname = 'escrows_due'`,
		schema).Scan(&indexes)
	if err != nil || indexes != 0 {
		t.Fatalf("%d escrows_due indexes left (%v), want none", indexes, err)
	}
	// Later writes: a due time moved, one cleared, one set, a new escrow.
	put(s, "a", at(5))
	put(s, "d", time.Time{})
	put(s, "none", at(1))
	put(s, "e", at(0))
	if got, want := due(s, at(10)), []string{"e", "b", "none", "c", "a"}; !slices.Equal(got, want) {
		t.Fatalf("due after later writes: %q, want %q", got, want)
	}
	// escrows.next_due agrees with escrow_due, for an operator's queries.
	var differ int
	err = admin.QueryRow(ctx, `SELECT count(*) FROM `+q("escrows")+` e JOIN `+q("escrow_due")+` d USING (id)
		WHERE (e.next_due, e.next_due_ns) IS DISTINCT FROM (d.next_due, d.next_due_ns)`).Scan(&differ)
	if err != nil || differ != 0 {
		t.Fatalf("%d escrows whose next_due differs from escrow_due (%v)", differ, err)
	}
}
