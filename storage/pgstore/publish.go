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
// The publishes of one store coalesce. A publish numbers whatever
// committed before it, other transactions' rows as well as its own, so
// the store keeps at most one publish in flight, a round, and remembers
// the greatest horizon a round returned (every transaction below it has
// its rows numbered). An Update that commits while no round is in flight
// makes its own publish the round, sent in the round trip of its COMMIT
// (see Round trips); one that commits while a round is in flight sends
// its COMMIT alone and waits for that round, which may have taken its
// snapshot before the commit, and then for the next one, which the first
// waiter to find none in flight starts on a goroutine of its own and the
// others share. A round runs under a context of its own, bounded by
// publishWait and ended by Close, not under the context of whoever
// started it, and each goroutine waits for it only as long as it would
// wait itself. Explicit Publish calls and the store's own publishing go
// through the same rounds.
//
// Update waits for its own rows to be numbered: while an older
// transaction is still running (anywhere in the cluster: transaction ids
// are the cluster's), rounds follow one another with a growing pause
// between them, shared by every waiter of the store, for up to
// publishWait. If that passes, the rows are numbered by whichever
// publish comes next: another Update's, or the store's own, which runs
// every publishIdle, and at once after a wait that gave up, until the
// rows are numbered. So a long write transaction elsewhere in the cluster
// delays the numbering of events, never a commit, and only the Updates
// that meet it first wait.
const (
	publishWait = 2 * time.Second
	publishIdle = time.Second

	// The pause before a round, while numbering is held back, starts at
	// minPause and doubles up to maxPause.
	minPause = 100 * time.Microsecond
	maxPause = 10 * time.Millisecond
)

// publisher runs the store's own publishing and its rounds.
type publisher struct {
	behind atomic.Int64 // the greatest transaction id whose rows a wait gave up on; 0 if none
	kick   chan struct{}
	ctx    context.Context // ends when the store closes
	stop   context.CancelFunc
	done   chan struct{}
	once   sync.Once
	rounds sync.WaitGroup // the rounds running on goroutines of their own

	mu      sync.Mutex
	horizon int64         // the greatest horizon a round returned
	current *round        // the round in flight, nil if none
	pause   time.Duration // before the next round started on a goroutine
}

// A round is one publish, which every goroutine of the store that waits
// for numbering while it is in flight shares.
type round struct {
	done chan struct{} // closed when the round has ended
	err  error         // why its publish failed; set before done is closed
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
	p.ctx, p.stop = context.WithCancel(context.Background())
	p.kick, p.done = make(chan struct{}, 1), make(chan struct{})
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
			case <-p.ctx.Done():
				t.Stop()
				return
			case <-p.kick:
			case <-t.C:
			}
			t.Stop()
			r := p.join(s, 0)
			select {
			case <-p.ctx.Done():
				return
			case <-r.done:
			}
			if r.err == nil {
				if b := p.behind.Load(); b != 0 && p.covers(b+1) {
					p.behind.CompareAndSwap(b, 0)
				}
			}
		}
	}()
}

// close stops the store's own publishing and its rounds, and waits for
// them.
func (p *publisher) close() {
	p.once.Do(func() {
		if p.stop != nil {
			p.stop()
			<-p.done
			p.rounds.Wait()
		}
	})
}

// covers reports whether the rows of every transaction below want are
// numbered, as far as the store's rounds know.
func (p *publisher) covers(want int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return want <= p.horizon
}

// claim makes the caller's publish the next round and returns it, unless
// a round is in flight: then it returns nil. The caller runs the publish
// and ends the round.
func (p *publisher) claim() *round {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.current != nil {
		return nil
	}
	p.current = &round{done: make(chan struct{})}
	return p.current
}

// join returns the round in flight, or starts one on a goroutine of its
// own, after the pause, for a caller that waits for the horizon want (0:
// for none in particular).
func (p *publisher) join(s *Store, want int64) *round {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.current == nil {
		r := &round{done: make(chan struct{})}
		p.current = r
		p.rounds.Add(1)
		go func(pause time.Duration) {
			defer p.rounds.Done()
			ctx, cancel := context.WithTimeout(p.ctx, publishWait)
			defer cancel()
			if pause > 0 {
				t := time.NewTimer(pause)
				select {
				case <-ctx.Done():
				case <-t.C:
				}
				t.Stop()
			}
			horizon, err := s.publish(ctx)
			p.end(r, want, horizon, err)
		}(p.pause)
	}
	return p.current
}

// end ends round r, whose publish returned horizon or failed with err.
// want is the horizon the round was started for, by a caller whose
// transaction had committed before it (0 if none): a round that falls
// short of it was held back by an older transaction, or failed, and the
// pause before the next round grows; one that reaches it ends the pause.
func (p *publisher) end(r *round, want, horizon int64, err error) {
	p.mu.Lock()
	if err == nil {
		p.horizon = max(p.horizon, horizon)
	}
	if want != 0 {
		if err != nil || horizon < want {
			p.pause = min(max(2*p.pause, minPause), maxPause)
		} else {
			p.pause = 0
		}
	}
	r.err = err
	p.current = nil
	p.mu.Unlock()
	close(r.done)
}

// await waits until the rows of every transaction below want are
// numbered, sharing the store's rounds, and returns nil; or the error of
// a round that failed, or ctx's when it ends first.
func (s *Store) await(ctx context.Context, want int64) error {
	for !s.pub.covers(want) {
		r := s.pub.join(s, want)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.done:
			if r.err != nil {
				return r.err
			}
		}
	}
	return nil
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
	// A round that failed is followed by the next, after the pause.
	for s.await(ctx, xid+1) != nil {
		if ctx.Err() != nil {
			if b := s.pub.behind.Load(); xid > b {
				s.pub.behind.CompareAndSwap(b, xid)
			}
			select {
			case s.pub.kick <- struct{}{}:
			default:
			}
			return
		}
	}
}

// Publish numbers every journal entry and event whose transaction
// committed before the call, waiting while transactions that began
// earlier are still running, until ctx ends; see escrow.Publisher. On a
// read-only store it returns escrow.ErrReadOnly.
func (s *Store) Publish(ctx context.Context) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	if s.readOnly {
		return escrow.ErrReadOnly
	}
	// Every transaction that has committed has an id below the snapshot's
	// xmax, the next id to be given.
	var next int64
	if err := s.pool.QueryRow(ctx, `SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint`).Scan(&next); err != nil {
		return classify(err)
	}
	return s.await(ctx, next)
}

// PendingEntries returns the journal entries the transaction sees that are
// not numbered yet; see escrow.PendingTx.
func (t *tx) PendingEntries() ([]escrow.Entry, error) {
	return t.entryRows(`SELECT e.id, e.seq, e.at, e.at_ns, e.kind, e.escrow, e.currency, e.minor, p.account, p.bucket, p.change
		FROM entries e LEFT JOIN postings p ON p.entry = e.id
		WHERE e.seq IS NULL ORDER BY e.id, p.idx`)
}
