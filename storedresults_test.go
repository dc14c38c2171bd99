package escrow_test

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/google/go-cmp/cmp"
	"github.com/shopspring/decimal"
)

// Idempotency records keep a call's result as JSON, and a store written by
// one release is read by the next for as long as a key is replayed. The
// tests here replay, with the current code, results stored in the form of
// earlier releases, and check that a retry gets exactly what the first
// call returned.

// writeResults makes TestStoredResults write the records of keyedScenario
// in the current form to testdata. It is meant to be run once per form, by
// the release that introduces it; later releases keep the file and only
// read it.
var writeResults = flag.Bool("write-results", false,
	"TestStoredResults: write testdata/idempotency/results-v<form>.json from this release's records")

// resultsFixture is where the records of keyedScenario, as a release
// stored them in the given form, are kept.
func resultsFixture(form int) string {
	return filepath.Join("testdata", "idempotency", fmt.Sprintf("results-v%d.json", form))
}

// resultForm returns the form a stored result is in: the "v" of its
// envelope, or 1, the form without one.
func resultForm(t testing.TB, result []byte) int {
	var env struct {
		V int `json:"v"`
	}
	if err := json.Unmarshal(result, &env); err != nil {
		t.Fatalf("stored result %s: %v", result, err)
	}
	return max(env.V, 1)
}

// A storedResult is an idempotency record as a fixture keeps it: the
// result as JSON text, so that the file can be read.
type storedResult struct {
	Key     string          `json:"key"`
	Request string          `json:"request"`
	Result  json.RawMessage `json:"result"`
	At      time.Time       `json:"at"`
}

// A keyedStep is one call of keyedScenario. It is made with the key the
// scenario gives it, the first time and on replay.
type keyedStep struct {
	key  string
	call func(f *world, key ...escrow.CallOption) (any, error)
}

// keyedScenario makes every kind of keyed call, so that every kind of
// result is stored: accounts, balances, escrows in most states (with
// milestones, a refused and an agreed refund request, a dispute resolved
// with a split) and ratings given, revised, left uncounted and replied to.
func keyedScenario() []keyedStep {
	terms := func(id string, price string) escrow.Terms {
		return escrow.Terms{ID: id, Buyer: "alice", Seller: "bob", Price: cny(price), Item: "item " + id}
	}
	big := escrow.Terms{ID: "e1", Buyer: "alice", Seller: "bob", Arbiter: "carol", Price: cny("300.00"),
		Item: "three parcels", Milestones: []escrow.Milestone{{Name: "first", Amount: cny("100.00")},
			{Name: "the rest", Amount: cny("200.00")}},
		Timers: escrow.Timers{ShipWithin: 36 * time.Hour, ConfirmWithin: 90*time.Minute + 5*time.Second}}
	step := func(key string, call func(f *world, k ...escrow.CallOption) (any, error)) keyedStep {
		return keyedStep{key, call}
	}
	return []keyedStep{
		step("account-alice", func(f *world, k ...escrow.CallOption) (any, error) { return f.l.OpenAccount(f.ctx, "alice", k...) }),
		step("account-bob", func(f *world, k ...escrow.CallOption) (any, error) { return f.l.OpenAccount(f.ctx, "bob", k...) }),
		step("deposit", func(f *world, k ...escrow.CallOption) (any, error) {
			return f.l.Deposit(f.ctx, "alice", cny("1000.00"), k...)
		}),
		step("withdraw", func(f *world, k ...escrow.CallOption) (any, error) {
			return f.l.Withdraw(f.ctx, "alice", cny("12.34"), k...)
		}),
		step("open-e1", func(f *world, k ...escrow.CallOption) (any, error) { return f.l.Open(f.ctx, big, k...) }),
		step("pay-e1", func(f *world, k ...escrow.CallOption) (any, error) { return f.l.Pay(f.ctx, "e1", "alice", k...) }),
		step("deposit-after-pay", func(f *world, k ...escrow.CallOption) (any, error) {
			return f.l.Deposit(f.ctx, "alice", cny("0.01"), k...)
		}),
		step("ship-e1", func(f *world, k ...escrow.CallOption) (any, error) { return f.l.Ship(f.ctx, "e1", "bob", "SF-1", k...) }),
		step("request-e1", func(f *world, k ...escrow.CallOption) (any, error) {
			return f.l.RequestRefund(f.ctx, "e1", "alice", cny("50.00"), "one parcel damaged", k...)
		}),
		step("refuse-e1", func(f *world, k ...escrow.CallOption) (any, error) {
			return f.l.RefuseRefund(f.ctx, "e1", "bob", "it left intact", k...)
		}),
		step("milestone-e1", func(f *world, k ...escrow.CallOption) (any, error) {
			return f.l.ConfirmMilestone(f.ctx, "e1", "alice", 0, k...)
		}),
		step("dispute-e1", func(f *world, k ...escrow.CallOption) (any, error) {
			return f.l.Dispute(f.ctx, "e1", "alice", "second parcel missing", k...)
		}),
		step("resolve-e1", func(f *world, k ...escrow.CallOption) (any, error) {
			return f.l.Resolve(f.ctx, "e1", "carol", escrow.Split{Buyer: cny("150.00"), Seller: cny("50.00")}, k...)
		}),
		step("rate-e1-alice", func(f *world, k ...escrow.CallOption) (any, error) {
			return f.l.Rate(f.ctx, "e1", "alice", escrow.RatingInput{Score: escrow.Negative,
				Details: escrow.Details{Described: 1, Communication: 2, Shipping: 3}, Comment: "half of it"}, k...)
		}),
		step("rate-e1-bob", func(f *world, k ...escrow.CallOption) (any, error) {
			return f.l.Rate(f.ctx, "e1", "bob", escrow.RatingInput{Score: escrow.Neutral, Comment: "hard work"}, k...)
		}),
		step("revise-e1", func(f *world, k ...escrow.CallOption) (any, error) {
			return f.l.Revise(f.ctx, "e1", "alice", escrow.Positive, "sorted out in the end", k...)
		}),
		step("reply-e1", func(f *world, k ...escrow.CallOption) (any, error) {
			return f.l.Reply(f.ctx, "e1", "alice", "bob", "thank you", k...)
		}),
		// Opening it again returns the escrow as it now is: rated by both.
		step("reopen-e1", func(f *world, k ...escrow.CallOption) (any, error) { return f.l.Open(f.ctx, big, k...) }),
		step("open-e2", func(f *world, k ...escrow.CallOption) (any, error) {
			return f.l.Open(f.ctx, terms("e2", "20.00"), k...)
		}),
		step("cancel-e2", func(f *world, k ...escrow.CallOption) (any, error) { return f.l.Cancel(f.ctx, "e2", "bob", k...) }),
		step("open-e3", func(f *world, k ...escrow.CallOption) (any, error) {
			return f.l.Open(f.ctx, terms("e3", "30.00"), k...)
		}),
		step("pay-e3", func(f *world, k ...escrow.CallOption) (any, error) { return f.l.Pay(f.ctx, "e3", "alice", k...) }),
		step("refund-e3", func(f *world, k ...escrow.CallOption) (any, error) {
			return f.l.Refund(f.ctx, "e3", "bob", cny("30.00"), k...)
		}),
		step("open-e4", func(f *world, k ...escrow.CallOption) (any, error) {
			return f.l.Open(f.ctx, terms("e4", "40.00"), k...)
		}),
		step("pay-e4", func(f *world, k ...escrow.CallOption) (any, error) { return f.l.Pay(f.ctx, "e4", "alice", k...) }),
		step("request-e4", func(f *world, k ...escrow.CallOption) (any, error) {
			return f.l.RequestRefund(f.ctx, "e4", "alice", cny("5.00"), "", k...)
		}),
		step("agree-e4", func(f *world, k ...escrow.CallOption) (any, error) { return f.l.AgreeRefund(f.ctx, "e4", "bob", k...) }),
		step("ship-e4", func(f *world, k ...escrow.CallOption) (any, error) { return f.l.Ship(f.ctx, "e4", "bob", "", k...) }),
		step("confirm-e4", func(f *world, k ...escrow.CallOption) (any, error) { return f.l.Confirm(f.ctx, "e4", "alice", k...) }),
	}
}

// keyedWorld is the world keyedScenario runs in: a fee with a fixed part
// rounded half up, so that every field of an escrow's fee terms is set.
func keyedWorld(t *testing.T) *world {
	return newFixtureWith(t, &escrow.Options{Fee: escrow.FeePolicy{Rate: decimal.RequireFromString("0.006"),
		Fixed: []escrow.Money{cny("0.50")}, Rounding: escrow.RoundHalfUp}})
}

// runKeyedScenario makes the scenario's calls in f, a few minutes apart,
// and returns their results.
func runKeyedScenario(f *world) []any {
	f.t.Helper()
	var results []any
	for _, s := range keyedScenario() {
		f.clock.Advance(7*time.Minute + 250*time.Millisecond)
		r, err := s.call(f, escrow.IdempotencyKey(s.key))
		f.must(s.key, err)
		results = append(results, r)
	}
	return results
}

// storedRecords returns every idempotency record in f's store, in key
// order.
func storedRecords(f *world) []storedResult {
	f.t.Helper()
	var out []storedResult
	f.must("Idempotencies", f.store.View(f.ctx, func(tx escrow.Tx) error {
		return tx.Idempotencies(func(r escrow.IdempotencyRecord) error {
			out = append(out, storedResult{Key: r.Key, Request: r.Request, Result: r.Result, At: r.At})
			return nil
		})
	}))
	return out
}

// TestStoredResults writes, with -write-results, the records the scenario
// leaves, as this release stores them.
func TestStoredResults(t *testing.T) {
	if !*writeResults {
		t.Skip("writes testdata only with -write-results")
	}
	f := keyedWorld(t)
	runKeyedScenario(f)
	records := storedRecords(f)
	b, err := json.MarshalIndent(records, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	name := resultsFixture(resultForm(t, records[0].Result))
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// withoutLaterFields compares escrows without the fields added after the
// fixtures were written: a result an earlier release stored cannot hold
// them, and a retry gets that result as the release stored it.
var withoutLaterFields = cmp.Transformer("withoutLaterFields", func(e escrow.Escrow) escrow.Escrow {
	e.Refund.RefuseReason, e.Refund.RefusedAt = "", time.Time{}
	e.Dispute = escrow.DisputeClaim{}
	return e
})

// valuedAtPrice compares the ratings of e1 as the fixtures' releases
// valued them: at the escrow's price. A rating is now worth what its
// escrow released (150.00 of e1's 300.00, the rest refunded by the
// arbiter), and a retry of a call made before then gets the result as it
// was stored.
var valuedAtPrice = cmp.Transformer("valuedAtPrice", func(r escrow.Rating) escrow.Rating {
	if r.Escrow == "e1" {
		r.Value, r.Weight = cny("300.00"), math.Log10(10+300)
	}
	return r
})

// TestReplayStoredResults replays every call of the scenario over the
// records kept in testdata, each in a form some release stored: each retry
// returns exactly what the first call returned, and changes nothing.
func TestReplayStoredResults(t *testing.T) {
	for form := 1; ; form++ {
		raw, err := os.ReadFile(resultsFixture(form))
		if errors.Is(err, os.ErrNotExist) && form > 1 {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Run(fmt.Sprintf("v%d", form), func(t *testing.T) {
			var old []storedResult
			if err := json.Unmarshal(raw, &old); err != nil {
				t.Fatal(err)
			}
			for _, r := range old {
				if got := resultForm(t, r.Result); got != form {
					t.Fatalf("record %s in %s is in form %d", r.Key, resultsFixture(form), got)
				}
			}
			f := keyedWorld(t)
			first := runKeyedScenario(f)
			records := storedRecords(f)
			// The calls are the same, and so is the form of their requests.
			if diff := cmp.Diff(old, records, cmp.Comparer(func(a, b json.RawMessage) bool { return true })); diff != "" {
				t.Fatalf("records other than the fixture's, besides their results (-fixture +now):\n%s", diff)
			}
			f.must("put old records", f.store.Update(f.ctx, func(tx escrow.Tx) error {
				for _, r := range old {
					err := tx.PutIdempotency(escrow.IdempotencyRecord{Key: r.Key, Request: r.Request, Result: r.Result, At: r.At})
					if err != nil {
						return err
					}
				}
				return nil
			}))
			before := f.dump()
			f.clock.Advance(time.Hour)
			for i, s := range keyedScenario() {
				var replayed bool
				again, err := s.call(f, escrow.IdempotencyKey(s.key), escrow.Replayed(&replayed))
				if err != nil || !replayed {
					t.Errorf("replay of %s: replayed %v, err %v", s.key, replayed, err)
					continue
				}
				if diff := cmp.Diff(first[i], again, withoutLaterFields, valuedAtPrice); diff != "" {
					t.Errorf("replay of %s from a stored result (-first call +replay):\n%s", s.key, diff)
				}
			}
			f.unchanged(before, "replaying stored results")
		})
	}
}

// TestUnreadableStoredResult retries calls whose records hold a result
// this release cannot read: one from a newer release, and a damaged one.
// The retry fails with ErrIdempotencyMismatch and changes nothing: making
// the call again could pay twice.
func TestUnreadableStoredResult(t *testing.T) {
	for name, result := range map[string]string{
		"NewerForm": `{"v":3,"result":{"id":"alice"}}`,
		"Damaged":   `{"ID":`,
		"WrongType": `{"ID":7}`,
	} {
		t.Run(name, func(t *testing.T) {
			f := keyedWorld(t)
			key := escrow.IdempotencyKey("account-alice")
			if _, err := f.l.OpenAccount(f.ctx, "alice", key); err != nil {
				t.Fatal(err)
			}
			records := storedRecords(f)
			f.must("put record", f.store.Update(f.ctx, func(tx escrow.Tx) error {
				return tx.PutIdempotency(escrow.IdempotencyRecord{Key: records[0].Key, Request: records[0].Request,
					Result: []byte(result), At: records[0].At})
			}))
			before := f.dump()
			a, err := f.l.OpenAccount(f.ctx, "alice", key)
			if !errors.Is(err, escrow.ErrIdempotencyMismatch) || a != (escrow.Account{}) {
				t.Fatalf("retry = %+v, %v; want ErrIdempotencyMismatch", a, err)
			}
			if !strings.Contains(err.Error(), "cannot read") {
				t.Errorf("error %q does not say the result cannot be read", err)
			}
			f.unchanged(before, "a retry over an unreadable result")
		})
	}
}
