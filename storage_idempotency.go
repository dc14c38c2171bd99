package escrow

import "time"

// IdempotencyTx is the part of a Tx that keeps idempotency records and
// their index by age. Idempotencies is for snapshots.
type IdempotencyTx interface {
	// Idempotency returns the record stored under key, or ErrNotFound.
	Idempotency(key string) (IdempotencyRecord, error)
	// PutIdempotency stores r under r.Key, replacing any record there.
	PutIdempotency(r IdempotencyRecord) error
	// Idempotencies calls fn for every record in ascending key order,
	// stopping at the first error fn returns, which it returns.
	Idempotencies(fn func(IdempotencyRecord) error) error
	// IdempotenciesUntil returns the keys of at most limit records whose
	// At is not after t, oldest first (ties by key). None: an empty slice.
	// It must use an index, not read every record. An adapter may order
	// times only within the range of time.Time.UnixNano (the years 1678
	// to 2262), as memstore and filestore do: it may take every time
	// before that range, At or t, for one time before all of it, and
	// every time after it for one time after all of it, records at such
	// a time then coming by key. The ledger stamps At with its clock, so
	// a clock that reads within those years never meets the limit.
	IdempotenciesUntil(t time.Time, limit int) ([]string, error)
	// DeleteIdempotency removes the record stored under key, from that
	// index too. No record under key: it does nothing and returns nil.
	DeleteIdempotency(key string) error
}

// IdempotencyRecord remembers the outcome of a call made with an
// idempotency key, so that a repeat of the call returns the same result.
type IdempotencyRecord struct {
	Key     string    `json:"key"`         // the caller's key
	Request string    `json:"request"`     // a canonical description of the call and its arguments
	Result  []byte    `json:"result"`      // the call's result, in a versioned JSON form only the ledger reads
	At      time.Time `json:"at,omitzero"` // when the call was made
}
