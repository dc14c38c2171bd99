package pgstore

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/jackc/pgx/v5"
)

var (
	_ escrow.Publisher = (*Store)(nil)
	_ escrow.PendingTx = (*tx)(nil)
)

// Numbering. A transaction stores its journal entries and events with no
// number, beside the id of the transaction (pg_current_xact_id). After it
// commits, Update calls pgstore_publish (migration 0005), which numbers,
// under an advisory lock and outside any serializable transaction, every
// row of the transactions older than the oldest one still running. Those
// can no longer be joined by a row that commits later, so the numbers
// are final and a reader never sees a gap close behind it. The writers no
// longer read the ends of the entries and events tables, so they no
// longer conflict over them.
//
// Update waits for its own rows to be numbered: when an older transaction
// is still running (anywhere in the cluster: transaction ids are the
// cluster's), it tries again, with a growing pause, for up to
// publishWait. If that passes, the rows are numbered by whichever
// publish comes next: another Update's, or the store's own, which runs
// every publishIdle, and at once after a wait that gave up, until the
// rows are numbered. So a long write transaction elsewhere in the cluster
// delays the numbering of events, never a commit, and only the first
// Update that meets it waits.
const (
	publishWait = 2 * time.Second
	publishIdle = time.Second
)

// publisher runs the store's own publishing.
type publisher struct {
	behind atomic.Int64 // the greatest transaction id whose rows a wait gave up on; 0 if none
	kick   chan struct{}
	stop   context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// appendRows queues sql, which stores rows that publishing numbers and
// returns the transaction's id, and calls done once it is queued.
func (t *tx) appendRows(sql string, args []any, done func()) error {
	err := t.execThen(sql, args, func(br pgx.BatchResults) error {
		err := br.QueryRow().Scan(&t.xid)
		if sae := (pgx.ScanArgError{}); errors.As(err, &sae) {
			// The statement ran (the server went on to what followed it,
			// COMMIT perhaps), only its reply did not scan: not a failure
			// of the transaction. Without the id, Update does not wait for
			// the rows to be numbered; the store's publishing numbers them.
			t.xid = 0
			return nil
		}
		return err
	})
	if err != nil {
		return err
	}
	t.appended = true
	done()
	return nil
}

// start starts the store's own publishing.
func (p *publisher) start(s *Store) {
	ctx, cancel := context.WithCancel(context.Background())
	p.kick, p.stop, p.done = make(chan struct{}, 1), cancel, make(chan struct{})
	p.kick <- struct{}{} // number at once what a process that died after its commit left
	go func() {
		defer close(p.done)
		for {
			wait := publishIdle
			if p.behind.Load() != 0 {
				wait = 20 * time.Millisecond
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-p.kick:
			case <-t.C:
			}
			t.Stop()
			if horizon, err := s.publish(ctx); err == nil {
				if b := p.behind.Load(); b != 0 && b < horizon {
					p.behind.CompareAndSwap(b, 0)
				}
			}
		}
	}()
}

// close stops the store's own publishing and waits for it.
func (p *publisher) close() {
	p.once.Do(func() {
		if p.stop != nil {
			p.stop()
			<-p.done
		}
	})
}

// publishSQL numbers what can be numbered and returns the horizon; see
// publish.
const publishSQL = `SELECT pgstore_publish()`

// publish numbers what can be numbered and returns the horizon: the rows
// of every transaction whose id is below it are numbered.
func (s *Store) publish(ctx context.Context) (int64, error) {
	var horizon int64
	if err := s.pool.QueryRow(ctx, publishSQL).Scan(&horizon); err != nil {
		return 0, classify(err)
	}
	return horizon, nil
}

// awaitPublished waits, after a commit, until the rows of transaction xid
// are numbered; see Numbering above. The commit stands whatever happens
// here, so nothing is returned: rows this leaves unnumbered are numbered
// by a later publish.
func (s *Store) awaitPublished(ctx context.Context, xid int64) {
	if s.pub.behind.Load() != 0 {
		// An older transaction holds numbering back already: do not wait
		// for it again, leave it to the store's publishing.
		if b := s.pub.behind.Load(); xid > b {
			s.pub.behind.CompareAndSwap(b, xid)
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishWait)
	defer cancel()
	for pause := 100 * time.Microsecond; ; pause = min(2*pause, 10*time.Millisecond) {
		horizon, err := s.publish(ctx)
		if err == nil && xid < horizon {
			return
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			if b := s.pub.behind.Load(); xid > b {
				s.pub.behind.CompareAndSwap(b, xid)
			}
			select {
			case s.pub.kick <- struct{}{}:
			default:
			}
			return
		case <-t.C:
		}
	}
}

// Publish numbers every journal entry and event whose transaction
// committed before the call, waiting while transactions that began
// earlier are still running, until ctx ends; see escrow.Publisher.
func (s *Store) Publish(ctx context.Context) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	// Every transaction that has committed has an id below the snapshot's
	// xmax, the next id to be given.
	var next int64
	if err := s.pool.QueryRow(ctx, `SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint`).Scan(&next); err != nil {
		return classify(err)
	}
	for pause := 100 * time.Microsecond; ; pause = min(2*pause, 10*time.Millisecond) {
		horizon, err := s.publish(ctx)
		if err != nil {
			return err
		}
		if horizon >= next {
			return nil
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// PendingEntries returns the journal entries the transaction sees that are
// not numbered yet; see escrow.PendingTx.
func (t *tx) PendingEntries() ([]escrow.Entry, error) {
	return t.entryRows(`SELECT e.id, e.seq, e.at, e.at_ns, e.kind, e.escrow, e.currency, e.minor, p.account, p.bucket, p.change
		FROM entries e LEFT JOIN postings p ON p.entry = e.id
		WHERE e.seq IS NULL ORDER BY e.id, p.idx`)
}
