package escrow_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/google/go-cmp/cmp"
)

// TestHistory: History returns exactly the events of one escrow, in the
// order of the event stream: its actions, its timers and its ratings with
// their revisions and replies. Every escrow event names the buyer and the
// seller.
func TestHistory(t *testing.T) {
	w := newFixture(t)
	w.funded("alice", "bob", "dave")
	openWithMetadata(w, "e1", nil)
	_, err := w.l.Open(w.ctx, escrow.Terms{ID: "e2", Buyer: "dave", Seller: "alice", Price: cny("1.00")})
	w.must("Open e2", err)
	for _, step := range []func() error{
		func() error { _, err := w.l.Pay(w.ctx, "e1", "alice"); return err },
		func() error { _, err := w.l.Ship(w.ctx, "e1", "bob", "SF1"); return err },
		func() error { _, err := w.l.Confirm(w.ctx, "e1", "alice"); return err },
		func() error {
			_, err := w.l.Rate(w.ctx, "e1", "alice", escrow.RatingInput{Score: escrow.Neutral})
			return err
		},
		func() error { _, err := w.l.Revise(w.ctx, "e1", "alice", escrow.Positive, ""); return err },
		func() error { _, err := w.l.Reply(w.ctx, "e1", "alice", "bob", "thanks"); return err },
	} {
		w.must("step", step())
	}
	w.clock.Advance(30 * 24 * time.Hour) // e2 closes unpaid; bob's rating of e1 comes by default
	w.processDue()

	all := pagedEvents(w, 100)
	parties := map[string][2]string{"e1": {"alice", "bob"}, "e2": {"dave", "alice"}}
	for _, ev := range all {
		if ev.Escrow == "" {
			if ev.Buyer != "" || ev.Seller != "" {
				t.Errorf("account event %d names parties %q and %q", ev.Seq, ev.Buyer, ev.Seller)
			}
			continue
		}
		if got := [2]string{ev.Buyer, ev.Seller}; got != parties[ev.Escrow] {
			t.Errorf("event %d (%s of %s) names buyer and seller %q, want %q", ev.Seq, ev.Type, ev.Escrow, got, parties[ev.Escrow])
		}
	}
	for id := range parties {
		var want []escrow.Event
		for _, ev := range all {
			if ev.Escrow == id {
				want = append(want, ev)
			}
		}
		got, err := w.l.History(w.ctx, id)
		w.must("History "+id, err)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("History(%s) (-the events of %s in the stream +History):\n%s", id, id, diff)
		}
	}
	var types []escrow.EventType
	h, _ := w.l.History(w.ctx, "e1")
	for _, ev := range h {
		types = append(types, ev.Type)
	}
	wantTypes := []escrow.EventType{escrow.EscrowOpened, escrow.EscrowPaid, escrow.EscrowShipped, escrow.EscrowReleased,
		escrow.RatingGiven, escrow.RatingRevised, escrow.RatingReplied, escrow.RatingGiven}
	if diff := cmp.Diff(wantTypes, types); diff != "" {
		t.Errorf("History(e1) types (-want +got):\n%s", diff)
	}

	got, err := w.l.History(w.ctx, "e-none")
	if !errors.Is(err, escrow.ErrNotFound) || got != nil {
		t.Errorf("History of no escrow = %v, %v; want nil, ErrNotFound", got, err)
	}
}

// TestHistoryLong: an escrow with more events than History reads at a
// time comes back whole, in order.
func TestHistoryLong(t *testing.T) {
	w := newFixture(t)
	w.funded("alice", "bob")
	const tranches = 100 // the most an escrow may have
	ms := make([]escrow.Milestone, tranches)
	for i := range ms {
		ms[i] = escrow.Milestone{Name: fmt.Sprintf("m%d", i), Amount: cny("0.01")}
	}
	_, err := w.l.Open(w.ctx, escrow.Terms{ID: "e1", Buyer: "alice", Seller: "bob", Price: cny("1.00"), Milestones: ms})
	w.must("Open", err)
	_, err = w.l.Pay(w.ctx, "e1", "alice")
	w.must("Pay", err)
	_, err = w.l.Ship(w.ctx, "e1", "bob", "SF1")
	w.must("Ship", err)
	for i := range tranches {
		_, err := w.l.ConfirmMilestone(w.ctx, "e1", "alice", i)
		w.must(fmt.Sprint("ConfirmMilestone ", i), err)
	}
	h, err := w.l.History(w.ctx, "e1")
	w.must("History", err)
	if want := 3 + tranches; len(h) != want {
		t.Fatalf("History has %d events, want %d", len(h), want)
	}
	for i := 1; i < len(h); i++ {
		if h[i].Seq <= h[i-1].Seq {
			t.Fatalf("History out of order at %d: %d after %d", i, h[i].Seq, h[i-1].Seq)
		}
	}
}

// market opens escrows among a few parties, some in the same instant, in
// several states, and returns the escrows as they are now.
func market(w *world) []escrow.Escrow {
	w.t.Helper()
	parties := []string{"ann", "ben", "cat", "dan"}
	w.funded(parties...)
	var ids []string
	for i := range 40 {
		buyer, seller := parties[i%4], parties[(i/4+i+1)%4]
		if buyer == seller {
			seller = parties[(i+2)%4]
		}
		arbiter := ""
		if i%3 == 0 {
			arbiter = "judge"
		}
		id := fmt.Sprintf("m-%02d", (i*7)%40) // IDs not in the order of opening
		_, err := w.l.Open(w.ctx, escrow.Terms{ID: id, Buyer: buyer, Seller: seller, Arbiter: arbiter, Price: cny("1.00")})
		w.must("Open "+id, err)
		switch i % 5 {
		case 1, 2:
			_, err = w.l.Pay(w.ctx, id, buyer)
		case 3:
			_, err = w.l.Cancel(w.ctx, id, buyer)
		}
		w.must("act on "+id, err)
		ids = append(ids, id)
		if i%4 != 3 { // four at a time share an instant
			w.clock.Advance(time.Minute)
		}
	}
	var all []escrow.Escrow
	for _, id := range ids {
		all = append(all, escrowNow(w, id))
	}
	return all
}

// want returns the IDs of the escrows of all that q selects, newest first.
func wantEscrows(all []escrow.Escrow, q escrow.EscrowQuery) []string {
	var sel []escrow.Escrow
	for _, e := range all {
		var role escrow.Role
		if e.Buyer == q.Party {
			role |= escrow.Buyer
		}
		if e.Seller == q.Party {
			role |= escrow.Seller
		}
		if e.Arbiter == q.Party {
			role |= escrow.Arbiter
		}
		if role == 0 || q.Role != 0 && role&q.Role == 0 || len(q.States) > 0 && !slices.Contains(q.States, e.State) {
			continue
		}
		sel = append(sel, e)
	}
	slices.SortFunc(sel, func(a, b escrow.Escrow) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	ids := []string{}
	for _, e := range sel {
		ids = append(ids, e.ID)
	}
	return ids
}

// TestEscrowsByParty: Escrows pages through a party's escrows, newest
// first, ties by ID, in every role and state filter and at every page
// size, returning each selected escrow once and as it is stored.
func TestEscrowsByParty(t *testing.T) {
	w := newFixture(t)
	all := market(w)
	byID := map[string]escrow.Escrow{}
	for _, e := range all {
		byID[e.ID] = e
	}
	queries := []escrow.EscrowQuery{
		{Party: "ann"}, {Party: "ben", Role: escrow.Buyer}, {Party: "cat", Role: escrow.Seller},
		{Party: "dan", Role: escrow.Buyer | escrow.Seller}, {Party: "judge", Role: escrow.Arbiter},
		{Party: "judge", Role: escrow.Buyer}, {Party: "nobody"},
		{Party: "ann", States: []escrow.State{escrow.AwaitingShipment}},
		{Party: "ben", States: []escrow.State{escrow.Closed, escrow.AwaitingPayment}},
		{Party: "judge", States: []escrow.State{escrow.Disputed}},
	}
	for _, q := range queries {
		want := wantEscrows(all, q)
		for _, limit := range []int{0, 1, 3, 7, 100} {
			q.Limit, q.Cursor = limit, ""
			var got []string
			for pages := 0; ; pages++ {
				page, err := w.l.Escrows(w.ctx, q)
				w.must("Escrows", err)
				for _, e := range page.Escrows {
					got = append(got, e.ID)
					if diff := cmp.Diff(byID[e.ID], e); diff != "" {
						t.Errorf("%+v: escrow %s differs from Escrow's (-Escrow +listed):\n%s", q, e.ID, diff)
					}
				}
				max := limit
				if max == 0 {
					max = escrow.DefaultPageLimit
				}
				if len(page.Escrows) > max {
					t.Fatalf("%+v: a page of %d escrows", q, len(page.Escrows))
				}
				if page.Next == "" {
					break
				}
				if len(page.Escrows) != max {
					t.Fatalf("%+v: a page of %d escrows before the last", q, len(page.Escrows))
				}
				q.Cursor = page.Next
				if pages > 100 {
					t.Fatalf("%+v: no last page", q)
				}
			}
			if got == nil {
				got = []string{}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%+v (-want +got):\n%s", q, diff)
			}
		}
	}
}

// TestEscrowsPagesHoldStill: escrows opened while a host pages through a
// party's escrows do not shift the pages it has yet to read.
func TestEscrowsPagesHoldStill(t *testing.T) {
	w := newFixture(t)
	all := market(w)
	q := escrow.EscrowQuery{Party: "ann", Limit: 2}
	want := wantEscrows(all, q)
	var got []string
	for i := 0; ; i++ {
		page, err := w.l.Escrows(w.ctx, q)
		w.must("Escrows", err)
		for _, e := range page.Escrows {
			got = append(got, e.ID)
		}
		if page.Next == "" {
			break
		}
		q.Cursor = page.Next
		w.clock.Advance(time.Second) // a new escrow, newest of all, and one in the same instant as the cursor
		_, err = w.l.Open(w.ctx, escrow.Terms{ID: fmt.Sprintf("new-%d", i), Buyer: "ann", Seller: "ben", Price: cny("1.00")})
		w.must("Open", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pages (-as at the first page +got):\n%s", diff)
	}
	first, err := w.l.Escrows(w.ctx, escrow.EscrowQuery{Party: "ann", Limit: 1})
	w.must("Escrows", err)
	if len(first.Escrows) != 1 || !strings.HasPrefix(first.Escrows[0].ID, "new-") {
		t.Errorf("a new first page begins with %+v, want the newest escrow", first.Escrows)
	}
}

// TestEscrowsQueryRefused: a query the ledger cannot answer is refused
// with ErrInvalidArgument, and changes nothing.
func TestEscrowsQueryRefused(t *testing.T) {
	w := newFixture(t)
	market(w)
	page, err := w.l.Escrows(w.ctx, escrow.EscrowQuery{Party: "ann", Limit: 1})
	w.must("Escrows", err)
	before := w.dump()
	for _, c := range []struct {
		name string
		q    escrow.EscrowQuery
	}{
		{"no party", escrow.EscrowQuery{}},
		{"party with a control character", escrow.EscrowQuery{Party: "ann\x00"}},
		{"party too long", escrow.EscrowQuery{Party: strings.Repeat("a", 129)}},
		{"unknown role", escrow.EscrowQuery{Party: "ann", Role: 8}},
		{"unknown state", escrow.EscrowQuery{Party: "ann", States: []escrow.State{escrow.Closed, 42}}},
		{"zero state", escrow.EscrowQuery{Party: "ann", States: []escrow.State{0}}},
		{"negative limit", escrow.EscrowQuery{Party: "ann", Limit: -1}},
		{"limit too large", escrow.EscrowQuery{Party: "ann", Limit: escrow.MaxPageLimit + 1}},
		{"cursor not base64", escrow.EscrowQuery{Party: "ann", Cursor: "%%%"}},
		{"cursor of something else", escrow.EscrowQuery{Party: "ann", Cursor: "aGVsbG8"}},
		{"cursor cut short", escrow.EscrowQuery{Party: "ann", Cursor: page.Next[:len(page.Next)-4]}},
	} {
		got, err := w.l.Escrows(w.ctx, c.q)
		if !errors.Is(err, escrow.ErrInvalidArgument) {
			t.Errorf("%s: err = %v, want ErrInvalidArgument", c.name, err)
		}
		if got.Escrows != nil || got.Next != "" {
			t.Errorf("%s: returned %+v with the error", c.name, got)
		}
	}
	w.unchanged(before, "refused queries")
}

// TestBalances: Balances lists what an account holds in every currency it
// has used, by currency code, as Balance reports each.
func TestBalances(t *testing.T) {
	w := newFixture(t)
	w.account("alice")
	w.account("bob")
	got, err := w.l.Balances(w.ctx, "alice")
	if err != nil || got == nil || len(got) != 0 {
		t.Errorf("Balances of an account that has used no currency = %#v, %v; want an empty list", got, err)
	}
	for _, m := range []escrow.Money{escrow.MustParseMoney("5.00", escrow.USD), cny("10.00"), escrow.MustParseMoney("300", escrow.JPY)} {
		_, err := w.l.Deposit(w.ctx, "alice", m)
		w.must("Deposit", err)
	}
	_, err = w.l.Deposit(w.ctx, "bob", cny("1.00"))
	w.must("Deposit", err)
	_, err = w.l.Open(w.ctx, escrow.Terms{ID: "e1", Buyer: "alice", Seller: "bob", Price: cny("4.00")})
	w.must("Open", err)
	_, err = w.l.Pay(w.ctx, "e1", "alice")
	w.must("Pay", err)

	got, err = w.l.Balances(w.ctx, "alice")
	w.must("Balances", err)
	var want []escrow.Balance
	for _, c := range []escrow.Currency{escrow.CNY, escrow.JPY, escrow.USD} {
		b, err := w.l.Balance(w.ctx, "alice", c)
		w.must("Balance", err)
		want = append(want, b)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Balances(alice) (-Balance of each +Balances):\n%s", diff)
	}
	if got[0].Held.String() != "4.00 CNY" {
		t.Errorf("alice holds %v in CNY, want 4.00 CNY held for e1", got[0].Held)
	}
	if got, err := w.l.Balances(w.ctx, "nobody"); !errors.Is(err, escrow.ErrNotFound) || got != nil {
		t.Errorf("Balances(nobody) = %v, %v; want nil, ErrNotFound", got, err)
	}
}
