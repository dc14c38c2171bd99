package pgstore

import (
	"errors"
	"strings"
	"sync"

	"github.com/escrowkit/escrow"
	"github.com/jackc/pgx/v5"
)

// Rows kept. The store keeps, in memory, the last version it saw of the
// rows its read-write transactions read and wrote most: escrows, user
// accounts and user balances, each with its row version (the xmin of the
// row, the id of the transaction that wrote that version). A later
// transaction that reads one of them gets it from memory at once, and
// the read becomes a guard, a statement held back like a write, to go
// with the next statement or with COMMIT: it reads the same row by the
// same index, so that serializable isolation sees the same read and locks
// the same pages, and fails with pgstore_row_changed (SQLSTATE PGS02)
// unless the row is still the version kept. Nothing after a failed guard
// runs, COMMIT included, and Update runs the transaction again, this time
// reading every row from the database. A transaction whose function
// returns an error of its own sends its guards before it returns it, so
// that no error comes from a row that had changed.
//
// Another transaction's write, in this process or any other, makes a new
// row version, with a new xmin, so a guard passes only if the row is the
// one kept, in the transaction's snapshot: the transaction then decides
// on the rows it would have read. The kept rows only save round trips;
// they are never trusted without a guard. A guard also compares what it
// can cheaply (an escrow's state and version, a balance's amounts, an
// account's columns), so that an xmin that came round again, after four
// billion transactions, does not pass it alone.

// rowKey names a row a store may keep.
type rowKey struct {
	table    byte // 'a' accounts, 'b' balances, 'e' escrows
	id       string
	currency string // of a balance
}

// keptRow is a row as the store read or wrote it.
type keptRow struct {
	xmin    int64
	account escrow.Account
	balance escrow.Balance
	escrow  *escrowRow
}

// rowKeeper holds a store's kept rows.
type rowKeeper struct {
	max  int // how many rows it keeps (Options.KeptRows); past it, it forgets one at random for each it keeps
	mu   sync.Mutex
	rows map[rowKey]keptRow

	// Whether keeping pays, for each table: of the last attempts that
	// read kept rows of it, how many there were and how many a changed
	// row failed, and how many reads of it are still to go to the
	// database instead (see judge).
	tried, failed, pause [4]int
}

// tables are the tables whose rows a store keeps, in the order of
// rowKeeper's counts; 'n' counts the escrows answered as absent (see
// absentEscrow).
const tables = "aben"

// Keeping rows does not pay where processes take turns on the same
// escrows: each finds the rows it kept changed by another, and pays a
// failed attempt and a round trip for them. So when more than half of
// keepWindow attempts that read kept rows of a table fail on a changed
// row (of that table or another read with it), the store's next
// keepPause reads of that table go to the database (which still keep
// what they read and write), and then it tries again. Accounts, which
// seldom change, stay kept while escrows are not. Answers of absence
// ('n') pause when more than a third fail: a right one saves a round
// trip, a wrong one costs a whole attempt, and where processes take turns
// on escrows half of them are wrong (each opens escrows the other then
// reads), which left alone cost about a failed attempt a trade.
const (
	keepWindow = 64
	keepPause  = 1024
)

// get returns the kept row of key, if any, and if reads of its table
// are answered from kept rows now.
func (k *rowKeeper) get(key rowKey) (keptRow, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	i := strings.IndexByte(tables, key.table)
	if k.pause[i] > 0 {
		k.pause[i]--
		return keptRow{}, false
	}
	r, ok := k.rows[key]
	return r, ok
}

// guessAbsent reports whether a read of an escrow that is not kept may
// be answered as absent (see absentEscrow): not while such answers are
// paused, having failed too often, nor while reads of kept escrows are
// (an escrow not kept then is most often one that exists).
func (k *rowKeeper) guessAbsent() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.pause[strings.IndexByte(tables, 'e')] > 0 {
		return false
	}
	i := strings.IndexByte(tables, 'n')
	if k.pause[i] > 0 {
		k.pause[i]--
		return false
	}
	return true
}

// judge counts an attempt that read kept rows of the tables in used (a
// bit for each, in the order of tables): changed if a guard failed.
func (k *rowKeeper) judge(used int, changed bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for i := range len(tables) {
		if used&(1<<i) == 0 {
			continue
		}
		k.tried[i]++
		if changed {
			k.failed[i]++
		}
		if k.tried[i] >= keepWindow {
			share := 2 // more than half failed
			if tables[i] == 'n' {
				share = 3 // more than a third
			}
			if share*k.failed[i] > k.tried[i] {
				k.pause[i] = keepPause
			}
			k.tried[i], k.failed[i] = 0, 0
		}
	}
}

// update keeps the rows a transaction committed with, and forgets those
// it dropped.
func (k *rowKeeper) update(keep map[rowKey]keptRow, drop map[rowKey]bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for key := range drop {
		delete(k.rows, key)
	}
	if k.max <= 0 {
		return
	}
	if k.rows == nil {
		k.rows = make(map[rowKey]keptRow)
	}
	for key, r := range keep {
		if _, ok := k.rows[key]; !ok && len(k.rows) >= k.max {
			for old := range k.rows { // a random one
				delete(k.rows, old)
				break
			}
		}
		k.rows[key] = r
	}
}

// errRowChanged reports a guard that found a kept row changed: Update
// runs the transaction again, reading every row from the database.
var errRowChanged = errors.New("a row the store kept has changed")

// saw records that the transaction read or wrote the row of key, as r;
// the store keeps it if the transaction commits.
func (t *tx) saw(key rowKey, r keptRow) {
	if !t.write || r.xmin == 0 {
		return
	}
	if t.seen == nil {
		t.seen = make(map[rowKey]keptRow)
	}
	t.seen[key] = r
}

// readRow records a row the transaction read from the database, as saw
// does, unless the transaction wrote the row before: what it read then
// holds its own write, which the store keeps only once it knows its
// version.
func (t *tx) readRow(key rowKey, r keptRow) {
	if !t.written[key] {
		t.saw(key, r)
	}
}

// wrote records that the transaction writes the row of key: the kept row,
// if any, no longer answers its reads.
func (t *tx) wrote(key rowKey) {
	if t.written == nil {
		t.written = make(map[rowKey]bool)
	}
	t.written[key] = true
}

// kept answers a read of the row of key from the store's kept rows, if
// it can: then it has queued the row's guard, made by guard from the row.
func (t *tx) kept(key rowKey, guard func(keptRow) (string, []any)) (keptRow, bool, error) {
	if !t.keep || t.written[key] {
		return keptRow{}, false, nil
	}
	r, ok := t.store.kept.get(key)
	if !ok {
		return keptRow{}, false, nil
	}
	sql, args := guard(r)
	t.queue = append(t.queue, queued{sql: sql, args: args, guard: true})
	t.guarded |= 1 << strings.IndexByte(tables, key.table)
	t.saw(key, r)
	if len(t.queue) >= maxQueued {
		if err := t.send(); err != nil {
			return keptRow{}, false, t.fail(err)
		}
	}
	return r, true, nil
}

// absentEscrow answers a read of the escrow id, which the store does not
// keep, as absent, if it may: it has queued a guard that fails unless
// the escrow is absent in the transaction's snapshot, as the read would
// have found it. An escrow read and not kept is most often one being
// opened, whose read finds nothing; a read of it by the database takes a
// predicate lock on the page of the primary key where the ID would be,
// and then the insert writes to that page, so that two opens whose IDs
// share a page (IDs taken in order, or a young table) each read what the
// other writes and one is aborted. Answered so, the read goes in the next
// batch as a guard, and if the transaction then creates the escrow before
// the guard has gone, PutEscrow drops the guard and inserts the escrow
// with no upsert (see PutEscrow): the insert then fails unless the ID is
// absent from every version of the table, committed or not, so the
// guard's check is made by the primary key's uniqueness instead, with no
// predicate lock on the page. The store counts these answers as a table
// of kept rows ('n') and pauses them when more than half fail. Only an
// Update's first attempt answers so: one that failed forgets the rows it
// read, and the next would take them for absent.
func (t *tx) absentEscrow(id string) (bool, error) {
	key := rowKey{table: 'e', id: id}
	if !t.guess || t.written[key] {
		return false, nil
	}
	if t.absent[id] {
		return true, nil // its guard is queued or sent already
	}
	if t.present[id] || t.seen[key].xmin != 0 || !t.store.kept.guessAbsent() {
		return false, nil
	}
	if t.absent == nil {
		t.absent = make(map[string]bool)
	}
	t.absent[id] = true
	t.guarded |= 1 << strings.IndexByte(tables, 'n')
	if err := t.enqueue(absentGuard(id)); err != nil {
		return false, err
	}
	return true, nil
}

// absentGuard returns the guard that the escrow id is absent.
func absentGuard(id string) queued {
	return queued{sql: guarded(`SELECT WHERE NOT EXISTS (SELECT FROM escrows WHERE id = $1)`),
		args: []any{id}, guard: true, absent: id}
}

// dropAbsentGuard removes from the queue the guard that the escrow id is
// absent, if it has not been sent, and reports whether it did.
func (t *tx) dropAbsentGuard(id string) bool {
	for i, q := range t.queue {
		if q.absent == id && q.guard {
			t.queue = append(t.queue[:i], t.queue[i+1:]...)
			return true
		}
	}
	return false
}

// guarded returns the guard statement of a row that sql selects where it
// is still the version kept: 1 if there is one, else it fails.
func guarded(sql string) string {
	return `SELECT CASE WHEN EXISTS (` + sql + `) THEN 1 ELSE pgstore_row_changed() END`
}

// verify sends the guards still queued, with BEGIN if it has not been
// sent, and no write, and then ROLLBACK: for a transaction that ends
// without committing, whose function's error may come from a kept row
// that has changed. (If a guard fails, ROLLBACK does not run, and run
// sends it.)
func (t *tx) verify() error {
	var guards []queued
	for _, q := range t.queue {
		switch {
		case q.guard:
			guards = append(guards, q)
		case q.absent != "":
			// The insert that took the place of an absent escrow's
			// guard will not be sent: the guard goes instead.
			guards = append(guards, absentGuard(q.absent))
		}
	}
	if len(guards) == 0 {
		return nil
	}
	clear(t.queue)
	t.queue = t.queue[:0]
	if err := t.send(append(guards, queued{sql: "ROLLBACK"})...); err != nil {
		return t.fail(err)
	}
	return nil
}

// wroteRow returns the function that reads the reply of a write that
// returns its row's xmin, and records the row, made by row, as seen.
func (t *tx) wroteRow(key rowKey, row func(xmin int64) keptRow) func(pgx.BatchResults) error {
	return func(br pgx.BatchResults) error {
		var xmin int64
		err := br.QueryRow().Scan(&xmin)
		if sae := (pgx.ScanArgError{}); errors.As(err, &sae) {
			return nil // the write ran; the row is only not kept
		}
		if err != nil {
			return err
		}
		t.saw(key, row(xmin))
		return nil
	}
}
