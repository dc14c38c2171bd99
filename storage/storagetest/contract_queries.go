package storagetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
)

// This file holds the contract of the indexes behind the ledger's
// queries (events by escrow, escrows by party) and of consumers.

func contractEscrowEvents(t *testing.T, h Harness) {
	s := open(t, h)
	// Events of e-1 and e-2 interleaved with account events.
	plan := []escrow.Event{
		{Type: escrow.AccountOpened, At: start, Account: "alice", Actor: "alice"},
		{Type: escrow.EscrowOpened, At: start, Escrow: "e-1", Buyer: "alice", Seller: "bob", State: escrow.AwaitingPayment},
		{Type: escrow.EscrowOpened, At: start, Escrow: "e-2", Buyer: "bob", Seller: "alice", State: escrow.AwaitingPayment},
		{Type: escrow.EscrowPaid, At: start, Escrow: "e-1", Buyer: "alice", Seller: "bob", State: escrow.AwaitingShipment},
		{Type: escrow.Deposited, At: start, Account: "bob", Actor: "bob", Amount: cny("5.00")},
		{Type: escrow.EscrowShipped, At: start, Escrow: "e-1", Buyer: "alice", Seller: "bob", State: escrow.AwaitingConfirmation},
		{Type: escrow.EscrowClosed, At: start, Escrow: "e-2", Buyer: "bob", Seller: "alice", State: escrow.Closed},
	}
	contractUpdate(t, s, func(tx escrow.Tx) error {
		for i := range plan {
			if err := tx.AppendEvent(&plan[i]); err != nil {
				return err
			}
		}
		return nil
	})
	for i := range plan { // a Publisher numbers them at the commit
		plan[i].Seq = uint64(i + 1)
	}
	of := func(id string, seqs ...uint64) []escrow.Event {
		out := []escrow.Event{}
		for _, seq := range seqs {
			if plan[seq-1].Escrow != id {
				t.Fatalf("the test's plan: event %d is not of %s", seq, id)
			}
			out = append(out, plan[seq-1])
		}
		return out
	}
	tests := []struct {
		id    string
		after uint64
		limit int
		want  []escrow.Event
	}{
		{"e-1", 0, 100, of("e-1", 2, 4, 6)},
		{"e-1", 0, 2, of("e-1", 2, 4)},
		{"e-1", 2, 1, of("e-1", 4)},
		{"e-1", 3, 100, of("e-1", 4, 6)},
		{"e-1", 6, 100, of("e-1")},
		{"e-1", 0, 0, of("e-1")},
		{"e-2", 0, 100, of("e-2", 3, 7)},
		{"e-2", 5, 100, of("e-2", 7)},
		{"e-none", 0, 100, of("e-none")},
		{"", 0, 100, of("")}, // account events are no escrow's
	}
	read := func(tx escrow.Tx, what string) error {
		for _, tc := range tests {
			got, err := tx.EscrowEvents(tc.id, tc.after, tc.limit)
			call := fmt.Sprintf("%s: EscrowEvents(%q, %d, %d)", what, tc.id, tc.after, tc.limit)
			if err != nil {
				return fmt.Errorf("%s: %w", call, err)
			}
			if got == nil {
				t.Errorf("%s = nil, want an empty slice", call)
			}
			contractDiff(t, call, tc.want, got)
		}
		return nil
	}
	contractView(t, s, func(tx escrow.Tx) error { return read(tx, "View") })

	// A transaction sees its own events in the index, and a rollback takes
	// them out again.
	before := contractDump(t, s)
	err := s.Update(context.Background(), func(tx escrow.Tx) error {
		ev := escrow.Event{Type: escrow.EscrowReleased, At: start, Escrow: "e-1", Buyer: "alice", Seller: "bob", State: escrow.Completed}
		if err := tx.AppendEvent(&ev); err != nil {
			return err
		}
		got, err := tx.EscrowEvents("e-1", 4, 100)
		if err != nil {
			return err
		}
		want := append(of("e-1", 6), ev)
		if _, late := tx.(escrow.PendingTx); late {
			want = of("e-1", 6) // a Publisher's event joins the index when it is numbered, after the commit
		}
		contractDiff(t, "EscrowEvents inside the transaction", want, got)
		return errContractAbort
	})
	if !errors.Is(err, errContractAbort) {
		t.Fatalf("Update returned %v, want %v", err, errContractAbort)
	}
	contractUnchanged(t, s, before, "a failed Update")
	contractView(t, s, func(tx escrow.Tx) error { return read(tx, "after a rollback") })
}

// contractPartyEscrow is an escrow with these parties, opened at minute
// min after start, in state.
func contractPartyEscrow(id, buyer, seller, arbiter string, min int, state escrow.State) escrow.Escrow {
	e := contractEscrow(id, time.Time{})
	e.Buyer, e.Seller, e.Arbiter = buyer, seller, arbiter
	e.CreatedAt = start.Add(time.Duration(min) * time.Minute)
	e.State = state
	return e
}

// contractWantParty is what PartyEscrows(q) returns of all, by a scan.
func contractWantParty(all []escrow.Escrow, q escrow.PartyQuery) []escrow.Escrow {
	var sel []escrow.Escrow
	for _, e := range all {
		in := e.Buyer == q.Party && q.Role&escrow.Buyer != 0 ||
			e.Seller == q.Party && q.Role&escrow.Seller != 0 ||
			e.Arbiter == q.Party && q.Role&escrow.Arbiter != 0
		if in && q.Party != "" && (len(q.States) == 0 || slices.Contains(q.States, e.State)) {
			sel = append(sel, e)
		}
	}
	slices.SortFunc(sel, func(a, b escrow.Escrow) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(b.ID, a.ID))
	})
	out := []escrow.Escrow{}
	for _, e := range sel {
		if q.After != (escrow.EscrowPos{}) && cmp.Or(q.After.CreatedAt.Compare(e.CreatedAt), cmp.Compare(q.After.ID, e.ID)) <= 0 {
			continue
		}
		if len(out) < q.Limit {
			out = append(out, e)
		}
	}
	return out
}

func contractPartyEscrows(t *testing.T, h Harness) {
	s := open(t, h)
	all := []escrow.Escrow{
		contractPartyEscrow("p-01", "ann", "ben", "judge", 0, escrow.AwaitingPayment),
		contractPartyEscrow("p-02", "ben", "ann", "", 1, escrow.AwaitingShipment),
		contractPartyEscrow("p-03", "ann", "cat", "judge", 1, escrow.Completed), // same instant as p-02
		contractPartyEscrow("p-04", "cat", "ann", "ann", 2, escrow.Disputed),    // ann twice: listed once
		contractPartyEscrow("p-10", "ann", "ben", "", 1, escrow.Closed),         // same instant, an ID after p-03
		contractPartyEscrow("p-05", "ben", "cat", "judge", 3, escrow.Refunded),
		contractPartyEscrow("p-00", "ann", "ben", "", 5, escrow.AwaitingPayment), // newest, with the lowest ID
	}
	contractUpdate(t, s, func(tx escrow.Tx) error {
		for _, e := range all {
			if err := tx.PutEscrow(e); err != nil {
				return err
			}
		}
		return nil
	})
	any := escrow.Buyer | escrow.Seller | escrow.Arbiter
	var queries []escrow.PartyQuery
	for _, party := range []string{"ann", "ben", "cat", "judge", "nobody", ""} {
		for _, role := range []escrow.Role{any, escrow.Buyer, escrow.Seller, escrow.Arbiter, escrow.Buyer | escrow.Arbiter} {
			queries = append(queries, escrow.PartyQuery{Party: party, Role: role, Limit: 100})
		}
	}
	queries = append(queries,
		escrow.PartyQuery{Party: "ann", Role: any, Limit: 2},
		escrow.PartyQuery{Party: "ann", Role: any, Limit: 0},
		escrow.PartyQuery{Party: "ann", Role: any, Limit: 100, States: []escrow.State{escrow.AwaitingPayment, escrow.Disputed}},
		escrow.PartyQuery{Party: "ann", Role: any, Limit: 100, States: []escrow.State{escrow.Resolved}},
		escrow.PartyQuery{Party: "ann", Role: any, Limit: 100, After: escrow.EscrowPos{CreatedAt: all[2].CreatedAt, ID: "p-10"}},
		escrow.PartyQuery{Party: "ann", Role: any, Limit: 100, After: escrow.EscrowPos{CreatedAt: all[2].CreatedAt, ID: "p-03"}},
		escrow.PartyQuery{Party: "ann", Role: any, Limit: 1, After: escrow.EscrowPos{CreatedAt: all[3].CreatedAt, ID: "p-04"}},
		escrow.PartyQuery{Party: "ann", Role: any, Limit: 100, After: escrow.EscrowPos{CreatedAt: start.Add(time.Hour), ID: "zzz"}},
		escrow.PartyQuery{Party: "ann", Role: any, Limit: 100, After: escrow.EscrowPos{CreatedAt: start, ID: "p-01"}},
	)
	read := func(tx escrow.Tx, what string, all []escrow.Escrow) error {
		for _, q := range queries {
			got, err := tx.PartyEscrows(q)
			call := fmt.Sprintf("%s: PartyEscrows(%+v)", what, q)
			if err != nil {
				return fmt.Errorf("%s: %w", call, err)
			}
			if got == nil {
				t.Errorf("%s = nil, want an empty slice", call)
			}
			contractDiff(t, call, contractWantParty(all, q), got)
		}
		return nil
	}
	contractView(t, s, func(tx escrow.Tx) error { return read(tx, "View", all) })

	// A change of parties or of CreatedAt files the escrow anew; a
	// transaction sees its own changes, and a rollback undoes them.
	changed := slices.Clone(all)
	changed[0].Buyer, changed[0].Arbiter = "dan", "" // p-01 leaves ann and judge
	changed[5].CreatedAt = start.Add(10 * time.Minute)
	changed = append(changed, contractPartyEscrow("p-06", "judge", "ann", "", 4, escrow.AwaitingPayment))
	before := contractDump(t, s)
	write := func(tx escrow.Tx) error {
		for _, e := range []escrow.Escrow{changed[0], changed[5], changed[len(changed)-1]} {
			if err := tx.PutEscrow(e); err != nil {
				return err
			}
		}
		return read(tx, "inside the transaction", changed)
	}
	err := s.Update(context.Background(), func(tx escrow.Tx) error {
		if err := write(tx); err != nil {
			return err
		}
		return errContractAbort
	})
	if !errors.Is(err, errContractAbort) {
		t.Fatalf("Update returned %v, want %v", err, errContractAbort)
	}
	contractUnchanged(t, s, before, "a failed Update")
	contractView(t, s, func(tx escrow.Tx) error { return read(tx, "after a rollback", all) })
	contractUpdate(t, s, write)
	contractView(t, s, func(tx escrow.Tx) error { return read(tx, "after a commit", changed) })
}

func contractConsumers(t *testing.T, h Harness) {
	s := open(t, h)
	want := []escrow.Consumer{
		{Name: "@audit", Seq: 0, UpdatedAt: start},
		{Name: "mailer", Seq: 7, UpdatedAt: start.Add(time.Minute)},
		{Name: "mailer-eu", Seq: 1 << 40, UpdatedAt: start.Add(time.Hour)},
		{Name: "sms"},
	}
	contractUpdate(t, s, func(tx escrow.Tx) error {
		for _, i := range []int{2, 0, 3, 1} {
			if err := tx.PutConsumer(want[i]); err != nil {
				return err
			}
		}
		return nil
	})
	check := func(what string) {
		t.Helper()
		contractView(t, s, func(tx escrow.Tx) error {
			for _, c := range want {
				got, err := tx.Consumer(c.Name)
				if err != nil {
					return fmt.Errorf("%s: Consumer(%q): %w", what, c.Name, err)
				}
				contractDiff(t, what+": Consumer("+c.Name+")", c, got)
			}
			_, err := tx.Consumer("mail")
			contractNotFound(t, what+": Consumer(mail)", err)
			got, err := contractCollect(tx.Consumers)
			if err != nil {
				return err
			}
			contractDiff(t, what+": Consumers", want, got)
			contractStops(t, "Consumers", tx.Consumers)
			return nil
		})
	}
	check("as written")
	want[1].Seq, want[1].UpdatedAt = 9, start.Add(2*time.Minute)
	contractUpdate(t, s, func(tx escrow.Tx) error { return tx.PutConsumer(want[1]) })
	check("after a replacement")
	before := contractDump(t, s)
	err := s.Update(context.Background(), func(tx escrow.Tx) error {
		if err := tx.PutConsumer(escrow.Consumer{Name: "mailer", Seq: 100}); err != nil {
			return err
		}
		if err := tx.PutConsumer(escrow.Consumer{Name: "new", Seq: 1}); err != nil {
			return err
		}
		got, err := tx.Consumer("mailer")
		if err != nil || got.Seq != 100 {
			t.Errorf("Consumer(mailer) inside the transaction = %+v, %v; want Seq 100", got, err)
		}
		return errContractAbort
	})
	if !errors.Is(err, errContractAbort) {
		t.Fatalf("Update returned %v, want %v", err, errContractAbort)
	}
	contractUnchanged(t, s, before, "a failed Update")
	check("after a rollback")
}
