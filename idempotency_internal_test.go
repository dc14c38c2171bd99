package escrow

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestDecodeResultReplaces decodes stored results into values that hold
// something already, as a retried transaction's call does after an
// attempt that conflicted set its result: the decoded result is exactly
// the stored one, with nothing left over.
func TestDecodeResultReplaces(t *testing.T) {
	left := Rating{Escrow: "old", Reply: "left over", RepliedAt: time.Unix(5, 0).UTC(), Details: Details{Shipping: 2}}
	stored := Rating{Escrow: "e1", Rater: "a", Ratee: "b", RateeRole: Seller, Score: Positive}
	b, err := encodeResult(&stored)
	if err != nil {
		t.Fatal(err)
	}
	got := left
	if err := decodeResult(b, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(stored, got); diff != "" {
		t.Errorf("decoded over a rating (-stored +got):\n%s", diff)
	}
	acct := Account{ID: "x", System: true, CreatedAt: time.Unix(9, 0).UTC()}
	if err := decodeResult([]byte(`{"ID":"y"}`), &acct); err != nil || acct != (Account{ID: "y"}) {
		t.Errorf("version 1 decoded over an account: %+v, %v", acct, err)
	}
}
