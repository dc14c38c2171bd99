package storagetest

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/escrowkit/escrow/internal/spec"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// simSeeds are the seeds of the random runs. They are fixed so that a
// failure can be replayed; the subtest name and every failure message carry
// the seed.
var simSeeds = []uint64{1, 20260301, 0x5eed_cafe}

// RunSimulation drives a ledger over the stores h makes through long random
// sequences of every call, valid and deliberately wrong, with clock jumps
// and timer runs in between: steps calls for each of three fixed seeds, run
// side by side. Beside the ledger it keeps its own model of every balance
// and escrow, worked out from the rules as the test reads them, and compares
// the ledger with the model after every step. Every call the model says must
// be refused is checked to fail with the right error and to change nothing.
//
// The whole-store checks (the invariant checker, and a byte-for-byte dump
// of the store around a refused call) cost time in proportion to the
// store, so they run every CheckEvery steps, after the last step, and
// whenever a step fails; see Budget. The run is not part of
// RunConformanceTests: an adapter calls it from its own test, with
// SimulationBudget.
//
// A failure message names the seed and the step, so a run can be replayed.
func RunSimulation(t *testing.T, h Harness, b Budget) {
	if b.Steps <= 0 {
		t.Fatalf("RunSimulation: %d steps", b.Steps)
	}
	for _, seed := range simSeeds {
		t.Run("seed="+strconv.FormatUint(seed, 10), func(t *testing.T) {
			t.Parallel()
			runSimulation(t, h, seed, b)
		})
	}
}

// runSimulation is one seed's run.
func runSimulation(t testing.TB, h Harness, seed uint64, b Budget) {
	s := newSim(t, h, seed)
	s.every = b.checkEvery()
	for s.step = 1; s.step <= b.Steps; s.step++ {
		// Beyond 100,000 steps a dump runs to gigabytes; two of them at
		// once, per seed, would not fit in a test machine's memory.
		s.digests = s.step > 100_000 && !b.FullDumps
		s.randomOp()
		s.verify()
	}
	s.step = b.Steps + 1
	s.finish(b.Steps >= everyTimerSteps)
}

// Budgets for RunSimulation, in steps per seed.
const (
	ShortSimulation  = 600       // under go test -short
	MediumSimulation = 3000      // what an adapter runs by default
	LongSimulation   = 1_000_000 // ESCROW_SIM=long
)

// everyTimerSteps is the length from which a run must see every kind of
// timer fire; a shorter one may not.
const everyTimerSteps = 1000

// A Budget is how long RunSimulation runs and how often it runs the
// whole-store checks.
type Budget struct {
	// Steps is the number of calls per seed.
	Steps int
	// CheckEvery is how many steps apart the whole-store checks run, besides
	// after the last step and at a failure. Zero means Steps/100 (at least
	// 1) up to 100,000 steps, and Steps/20 beyond: a fixed number of checks
	// per run, so that its cost grows with Steps rather than its square.
	CheckEvery int
	// FullDumps compares whole dumps at every step. By default, past step
	// 100,000 the whole-store comparison compares digests, since two dumps
	// of such a store at once, per seed, run to gigabytes; so a failure
	// there names the seed and step but not the bytes. A rerun of that
	// seed alone with FullDumps and a Budget ending at that step shows
	// them.
	FullDumps bool
}

func (b Budget) checkEvery() int {
	switch {
	case b.CheckEvery > 0:
		return b.CheckEvery
	case b.Steps <= 100_000:
		return max(b.Steps/100, 1)
	}
	return b.Steps / 20
}

// SimulationBudget returns the budget the environment asks for, given the
// adapter's medium number of steps: with ESCROW_SIM=long, LongSimulation
// steps; with ESCROW_SIM set to a number, that many; under -short,
// ShortSimulation (or medium, if fewer); and so under the race detector,
// which makes every step many times slower while the run is one goroutine
// with little for it to find: the run without it, at the medium budget,
// is the one that must see every kind of timer.
func SimulationBudget(medium int) Budget {
	switch v := os.Getenv("ESCROW_SIM"); {
	case v == "long":
		return Budget{Steps: LongSimulation}
	case v != "":
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			return Budget{Steps: n}
		}
		panic("storagetest: ESCROW_SIM must be \"long\" or a number of steps, not " + strconv.Quote(v))
	case testing.Short(), raceDetector:
		return Budget{Steps: min(medium, ShortSimulation)}
	}
	return Budget{Steps: medium}
}

// actionSpec is the specification's state machine, written apart from
// the package's own rules; see internal/spec.
var actionSpec = spec.Actions

// specWho returns the roles actionSpec lets take action a, as one set.
var specWho = spec.Who

// Operation kinds, as counted in the run's summary.
const (
	kindDeposit          = "deposit"
	kindWithdraw         = "withdraw"
	kindOpen             = "open"
	kindReopen           = "reopen"
	kindPay              = "pay"
	kindShip             = "ship"
	kindConfirm          = "confirm"
	kindConfirmMilestone = "confirm-milestone"
	kindCancel           = "cancel"
	kindRefundPartial    = "refund-partial"
	kindRefundFull       = "refund-full"
	kindRequestRefund    = "request-refund"
	kindAgreeRefund      = "agree-refund"
	kindRefuseRefund     = "refuse-refund"
	kindDispute          = "dispute"
	kindResolve          = "resolve"
	kindAdvance          = "advance-clock"
	kindProcessDue       = "process-due"
	kindWaitForDeadline  = "wait-for-deadline"
	kindShipPart         = "ship-part"
	kindExtend           = "extend"
	kindRequestReturn    = "request-return"
	kindAgreeReturn      = "agree-return"
	kindShipReturn       = "ship-return"
	kindConfirmReturn    = "confirm-return"
	kindRefuseReturn     = "refuse-return"
	kindCancelReturn     = "cancel-return"
	kindAddEvidence      = "add-evidence"
	kindPayAll           = "pay-all"

	// What ProcessDue did, one count per timer fired.
	kindTimerClose         = "timer:close-unpaid"
	kindTimerRefund        = "timer:refund-unshipped"
	kindTimerConfirm       = "timer:auto-confirm"
	kindTimerAsRequest     = "timer:refund-as-requested"
	kindTimerAgreeReturn   = "timer:agree-return"
	kindTimerReturnLapsed  = "timer:return-not-shipped"
	kindTimerReturnRefund  = "timer:refund-returned"
	kindTimerRefusalStands = "timer:refused-return-ends"
	kindTimerEscalate      = "timer:escalate"
)

// simTimerKind is the kind of timer of each state waitForDeadline waits in.
var simTimerKind = map[escrow.State]string{escrow.ReturnRequested: kindTimerAgreeReturn,
	escrow.AwaitingReturn: kindTimerReturnLapsed, escrow.ReturnShipped: kindTimerReturnRefund,
	escrow.ReturnRefused: kindTimerRefusalStands, escrow.Disputed: kindTimerEscalate}

// timerKinds are the counts of timers fired, one per kind of timer.
var timerKinds = []string{kindTimerClose, kindTimerRefund, kindTimerConfirm, kindTimerAsRequest,
	kindTimerAgreeReturn, kindTimerReturnLapsed, kindTimerReturnRefund, kindTimerRefusalStands, kindTimerEscalate}

// alwaysSucceed are the kinds that have no way to fail.
var alwaysSucceed = append([]string{kindReopen, kindAdvance, kindProcessDue, kindWaitForDeadline}, timerKinds...)

// sim is one random run: the ledger under test and the test's model of it.
type sim struct {
	t     testing.TB
	f     *fixture
	rng   *rand.Rand
	seed  uint64
	step  int
	every int    // steps between whole-store checks
	op    string // what the current step does, for failure messages

	users                []string
	avail, held          map[string]int64 // the model's balances, in fen
	fees                 int64            // what the model says FeeAccount holds
	deposited, withdrawn int64

	escrows []*simEscrow
	byID    map[string]*simEscrow
	nextID  int
	// active are the escrows the operations choose from: every one not
	// yet ended and the simRecentlyEnded last opened of those that have,
	// so that a step costs the same however long the run has gone on.
	active []*simEscrow

	journal  uint64 // Seq of the last journal entry seen
	finished bool   // the final check is running
	dumpDue  bool   // the next refused call is checked against a whole dump
	digests  bool   // compare digests of whole dumps, not the dumps, at this step

	events  uint64 // Seq of the last event checked
	skipped bool   // the operation found nothing to act on and did nothing
	counts  map[string]*simCount
	ops     []simOp
}

type simCount struct{ ok, refused int }

type simOp struct {
	kind   string
	weight int
	run    func(bad bool)
}

// simEscrow is the model of one escrow.
type simEscrow struct {
	terms                          escrow.Terms
	timers                         escrow.Timers // terms.Timers with the ledger's defaults for the zero ones
	state                          escrow.State
	held, released, fees, refunded int64
	next                           int   // next milestone to confirm
	asked                          int64 // the amount of the open refund request or return
	resume                         escrow.State
	paused                         time.Duration
	dueAt                          time.Time

	shipments   int // parts shipped with ShipPart
	extended    escrow.Extensions
	ret         escrow.Return // the goods' way back
	evidence    int           // notes added to the dispute
	escalatedAt time.Time
	cart        string
	cartSize    int
}

func newSim(t testing.TB, h Harness, seed uint64) *sim {
	s := &sim{
		t: t, f: newFixture(t, h), seed: seed, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		users: []string{"ana", "bo", "chen", "dara", "eli", "fay"},
		avail: map[string]int64{}, held: map[string]int64{},
		byID: map[string]*simEscrow{}, counts: map[string]*simCount{},
	}
	s.f.accounts(s.users...)
	for _, u := range s.users {
		s.avail[u] = 100000
		s.deposited += 100000
	}
	evs, err := s.f.l.Events(s.f.ctx, 0, 1000)
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	s.events = uint64(len(evs))
	s.ops = []simOp{
		{kindDeposit, 4, s.deposit},
		{kindWithdraw, 3, s.withdraw},
		{kindOpen, 12, s.open},
		{kindReopen, 1, s.reopen},
		{kindPay, 10, s.pay},
		{kindShip, 8, s.ship},
		{kindConfirm, 4, s.confirm},
		{kindConfirmMilestone, 5, s.confirmMilestone},
		{kindCancel, 3, s.cancel},
		{kindRefundPartial, 3, func(bad bool) { s.refund(bad, false) }},
		{kindRefundFull, 2, func(bad bool) { s.refund(bad, true) }},
		{kindRequestRefund, 5, s.requestRefund},
		{kindAgreeRefund, 3, s.agreeRefund},
		{kindRefuseRefund, 3, s.refuseRefund},
		{kindDispute, 4, s.dispute},
		{kindResolve, 5, s.resolve},
		{kindAdvance, 6, s.advance},
		{kindProcessDue, 5, func(bool) { s.processDue() }},
		{kindWaitForDeadline, 2, s.waitForDeadline},
		{kindShipPart, 3, s.shipPart},
		{kindExtend, 4, s.extend},
		{kindRequestReturn, 10, s.requestReturn},
		{kindAgreeReturn, 4, s.agreeReturn},
		{kindShipReturn, 8, s.shipReturn},
		{kindConfirmReturn, 3, s.confirmReturn},
		{kindRefuseReturn, 4, s.refuseReturn},
		{kindCancelReturn, 1, s.cancelReturn},
		{kindAddEvidence, 3, s.addEvidence},
		{kindPayAll, 4, s.payAll},
	}
	return s
}

// randomOp runs one operation; about one in ten is deliberately wrong. A
// kind of operation that has no valid target just now (no escrow in the
// state it needs) is skipped and another drawn, so that most calls do
// something.
func (s *sim) randomOp() {
	s.op = "?"
	s.prune()
	for {
		op := s.draw()
		s.skipped = false
		bad := s.rng.IntN(10) == 0
		if c := s.counts[op.kind]; !bad && (c == nil || c.refused == 0) {
			// Until a kind has been refused once, try harder to get it
			// refused, so that short runs cover every refusal too.
			bad = s.rng.IntN(3) == 0
		}
		op.run(bad)
		if !s.skipped {
			return
		}
	}
}

// simRecentlyEnded is how many ended escrows stay among the active ones,
// for the calls that must be refused because an escrow has ended.
const simRecentlyEnded = 32

// prune drops from the active escrows all ended ones but the
// simRecentlyEnded last opened.
func (s *sim) prune() {
	ended := 0
	for _, m := range s.active {
		if m.state.Terminal() {
			ended++
		}
	}
	if ended <= 2*simRecentlyEnded {
		return
	}
	kept := s.active[:0]
	for _, m := range s.active {
		if !m.state.Terminal() || ended <= simRecentlyEnded {
			kept = append(kept, m)
		}
		if m.state.Terminal() {
			ended--
		}
	}
	clear(s.active[len(kept):])
	s.active = kept
}

// draw picks a kind of operation by weight. Until a kind has succeeded
// once, and been refused once if it can be, its weight counts simUnseen
// times, so that a short run sees the calls of the states an escrow
// seldom reaches succeed and fail too.
func (s *sim) draw() simOp {
	weight := func(op simOp) int {
		if c := s.counts[op.kind]; c == nil || c.ok == 0 || c.refused == 0 && !slices.Contains(alwaysSucceed, op.kind) {
			return simUnseen * op.weight
		}
		return op.weight
	}
	total := 0
	for _, op := range s.ops {
		total += weight(op)
	}
	n := s.rng.IntN(total)
	for _, op := range s.ops {
		if n < weight(op) {
			return op
		}
		n -= weight(op)
	}
	panic("weights do not add up")
}

// simUnseen is how many times more often draw picks a kind of operation
// that has not yet succeeded.
const simUnseen = 4

// fatalf fails the run. Since the whole-store checks do not run after every
// step, it runs the invariant checker too, so that the report says whether
// the store is still sound.
func (s *sim) fatalf(format string, args ...any) {
	s.t.Helper()
	msg := fmt.Sprintf(format, args...)
	if err := s.f.l.Check(s.f.ctx); err != nil && !strings.Contains(msg, err.Error()) {
		msg += "\nand the invariant checker says: " + err.Error()
	}
	s.t.Fatalf("seed %d, step %d, %s: %s", s.seed, s.step, s.op, msg)
}

// wholeStore reports whether this step runs the whole-store checks: every
// s.every steps, and at the end.
func (s *sim) wholeStore() bool { return s.finished || s.step%s.every == 0 }

func (s *sim) count(kind string, ok bool) {
	c := s.counts[kind]
	if c == nil {
		c = &simCount{}
		s.counts[kind] = c
	}
	if ok {
		c.ok++
	} else {
		c.refused++
	}
}

func (s *sim) now() time.Time { return s.f.clock.Now() }

// A simMark is the store as it was before a call that must change nothing:
// its footprint always, and its whole dump for the first such call on or
// after a whole-store step.
type simMark struct{ footprint, dump []byte }

// mark records the store before a call that must change nothing.
func (s *sim) mark() simMark {
	m := simMark{footprint: s.footprint()}
	if s.dumpDue || s.wholeStore() {
		m.dump = s.wholeDump()
	}
	return m
}

// wholeDump returns the store's Dump, or in a long run only its digest.
func (s *sim) wholeDump() []byte {
	s.t.Helper()
	if !s.digests {
		return s.f.dump()
	}
	d, err := digest(s.f.ctx, s.f.store)
	if err != nil {
		s.fatalf("Dump: %v", err)
	}
	return d
}

// footprint renders, as deterministic text, the part of the store a call
// can reach whose size follows the live set rather than the history: every
// account and balance, the due index and the version of every escrow in it, whatever
// follows the journal and the event log as last seen, and the idempotency
// keys (the run uses none). A call that must
// change nothing is checked against it on every step, and against a dump
// of the whole store on whole-store steps.
func (s *sim) footprint() []byte {
	s.t.Helper()
	var fp struct {
		Accounts []escrow.Account
		Balances []escrow.Balance
		Due      []string
		Escrows  []string // ID, version, state and money of each due escrow
		Journal  []escrow.Entry
		Events   []escrow.Event
		Keys     []string // by age
	}
	err := s.f.store.View(s.f.ctx, func(tx escrow.Tx) (err error) {
		if err = tx.Accounts(func(a escrow.Account) error { fp.Accounts = append(fp.Accounts, a); return nil }); err != nil {
			return err
		}
		if err = tx.Balances(func(b escrow.Balance) error { fp.Balances = append(fp.Balances, b); return nil }); err != nil {
			return err
		}
		if fp.Due, err = tx.DueEscrows(maxTime, 1<<30); err != nil {
			return err
		}
		for _, id := range fp.Due {
			e, err := tx.Escrow(id)
			if err != nil {
				return err
			}
			// Every write of an escrow moves its version; the money
			// and state are there for the report.
			fp.Escrows = append(fp.Escrows, fmt.Sprintf("%s v%d %s held %d released %d refunded %d",
				e.ID, e.Version, e.State, e.Held.Units(), e.Released.Units(), e.Refunded.Units()))
		}
		if fp.Journal, err = tx.Journal(s.journal, 1<<30); err != nil {
			return err
		}
		if fp.Events, err = tx.Events(s.events, 1<<30); err != nil {
			return err
		}
		fp.Keys, err = tx.IdempotenciesUntil(maxTime, 1<<30)
		return err
	})
	if err != nil {
		s.fatalf("reading the store's footprint: %v", err)
	}
	// The records hold no pointers or maps, so %v is deterministic, and
	// several times faster than JSON.
	return fmt.Appendf(nil, "%+v", fp)
}

// refuse runs call, which the model says must fail with want, and proves
// that it changed nothing.
func (s *sim) refuse(kind string, want error, call func() error) {
	s.t.Helper()
	before := s.mark()
	err := call()
	if !errors.Is(err, want) {
		s.fatalf("got error %v, want %v", err, want)
	}
	s.sameStore(before)
	s.count(kind, false)
}

// sameStore fails unless the store is still as before.
func (s *sim) sameStore(before simMark) {
	s.t.Helper()
	if after := s.footprint(); !bytes.Equal(before.footprint, after) {
		s.fatalf("the store changed: %s", simFirstDiff(before.footprint, after))
	}
	if before.dump == nil {
		return
	}
	after := s.wholeDump()
	if !bytes.Equal(before.dump, after) {
		if s.digests {
			s.fatalf("the store changed (its digest did; rerun the seed alone with a Budget ending at this step and FullDumps to see the bytes)")
		}
		s.fatalf("the store changed: %s", simFirstDiff(before.dump, after))
	}
	s.dumpDue = false
}

// succeed records a call the model says must succeed.
func (s *sim) succeed(kind string, err error) {
	s.t.Helper()
	if err != nil {
		s.fatalf("unexpected error: %v", err)
	}
	s.count(kind, true)
}

// simFirstDiff shows where two dumps part.
func simFirstDiff(a, b []byte) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	from := max(0, i-300)
	return fmt.Sprintf("at byte %d:\nbefore: …%s\nafter:  …%s", i, a[from:min(len(a), i+300)], b[from:min(len(b), i+300)])
}

// simYuan writes units fen as Money writes them: "12.50 CNY".
func simYuan(units int64) string { return fmt.Sprintf("%d.%02d CNY", units/100, units%100) }

// simUSD is an amount in the wrong currency for every escrow of the run.
var simUSD = escrow.MustParseMoney("1.00", escrow.USD)

// simFee is the fixture's fee, 0.6% rounded half to even, worked out
// independently of the ledger.
func simFee(units int64) int64 {
	q, r := units*6/1000, units*6%1000
	if 2*r > 1000 || 2*r == 1000 && q%2 == 1 {
		q++
	}
	return min(q, units)
}

// pick returns a random model escrow that satisfies ok, or nil.
func (s *sim) pick(ok func(m *simEscrow) bool) *simEscrow {
	var chosen *simEscrow
	n := 0
	for _, m := range s.active {
		if ok(m) {
			n++
			if s.rng.IntN(n) == 0 {
				chosen = m
			}
		}
	}
	return chosen
}

// pickOnTime is pick for a party's action, which on an escrow whose timer
// has run out is mostly refused (see late): it picks among the escrows
// whose timers have not, if there are any, so that each action still
// succeeds often enough to test. badAction picks late ones too.
func (s *sim) pickOnTime(ok func(m *simEscrow) bool) *simEscrow {
	if m := s.pick(func(m *simEscrow) bool { return ok(m) && !s.expired(m) }); m != nil {
		return m
	}
	return s.pick(ok)
}

func (s *sim) live() int {
	n := 0
	for _, m := range s.active {
		if !m.state.Terminal() {
			n++
		}
	}
	return n
}

func simInState(states ...escrow.State) func(m *simEscrow) bool {
	return func(m *simEscrow) bool { return slices.Contains(states, m.state) }
}

// rightActor returns a party that may take action a on m, or "" if there
// is none (Resolve on an escrow without an arbiter).
func (s *sim) rightActor(m *simEscrow, a escrow.Action) string {
	var c []string
	who := specWho(a)
	if who&escrow.Buyer != 0 {
		c = append(c, m.terms.Buyer)
	}
	if who&escrow.Seller != 0 {
		c = append(c, m.terms.Seller)
	}
	if who&escrow.Arbiter != 0 && m.terms.Arbiter != "" {
		c = append(c, m.terms.Arbiter)
	}
	if len(c) == 0 {
		return ""
	}
	return c[s.rng.IntN(len(c))]
}

// wrongActor returns someone who may not take action a on m: a party in
// another role, a user with no part in it, or an unknown ID.
func (s *sim) wrongActor(m *simEscrow, a escrow.Action) string {
	who := specWho(a)
	c := []string{"nobody"}
	if who&escrow.Buyer == 0 {
		c = append(c, m.terms.Buyer)
	}
	if who&escrow.Seller == 0 {
		c = append(c, m.terms.Seller)
	}
	if who&escrow.Arbiter == 0 && m.terms.Arbiter != "" {
		c = append(c, m.terms.Arbiter)
	}
	for _, u := range s.users {
		if u != m.terms.Buyer && u != m.terms.Seller && u != m.terms.Arbiter {
			c = append(c, u)
		}
	}
	return c[s.rng.IntN(len(c))]
}

// call takes action a on escrow id as actor, with arguments that are valid
// in themselves, and returns the error.
func (s *sim) call(a escrow.Action, id, actor string) error {
	ctx, l := s.f.ctx, s.f.l
	var err error
	switch a {
	case escrow.ActionPay:
		_, err = l.Pay(ctx, id, actor)
	case escrow.ActionShip:
		_, err = l.Ship(ctx, id, actor, "SF0001")
	case escrow.ActionConfirm:
		_, err = l.Confirm(ctx, id, actor)
	case escrow.ActionConfirmMilestone:
		_, err = l.ConfirmMilestone(ctx, id, actor, 0)
	case escrow.ActionCancel:
		_, err = l.Cancel(ctx, id, actor)
	case escrow.ActionRefund:
		_, err = l.Refund(ctx, id, actor, fen(1))
	case escrow.ActionRequestRefund:
		_, err = l.RequestRefund(ctx, id, actor, fen(1), "broken")
	case escrow.ActionAgreeRefund:
		_, err = l.AgreeRefund(ctx, id, actor)
	case escrow.ActionRefuseRefund:
		_, err = l.RefuseRefund(ctx, id, actor, "it was fine")
	case escrow.ActionDispute:
		_, err = l.Dispute(ctx, id, actor, "no agreement")
	case escrow.ActionResolve:
		_, err = l.Resolve(ctx, id, actor, escrow.Split{Buyer: fen(1)})
	case escrow.ActionShipPart:
		_, err = l.ShipPart(ctx, id, actor, "SF0002")
	case escrow.ActionExtend:
		_, err = l.Extend(ctx, id, actor, time.Minute)
	case escrow.ActionRequestReturn:
		_, err = l.RequestReturn(ctx, id, actor, fen(1), "broken")
	case escrow.ActionAgreeReturn:
		_, err = l.AgreeReturn(ctx, id, actor, "1 Return Road")
	case escrow.ActionShipReturn:
		_, err = l.ShipReturn(ctx, id, actor, "RT0001")
	case escrow.ActionConfirmReturn:
		_, err = l.ConfirmReturn(ctx, id, actor)
	case escrow.ActionRefuseReturn:
		_, err = l.RefuseReturn(ctx, id, actor, "an empty box")
	case escrow.ActionCancelReturn:
		_, err = l.CancelReturn(ctx, id, actor)
	case escrow.ActionAddEvidence:
		_, err = l.AddEvidence(ctx, id, actor, "a photo of the box", "photo-1")
	default:
		panic("unknown action " + a.String())
	}
	return err
}

// badAction makes a call of action a that must be refused: by the wrong
// party or a stranger, in a state that does not allow it, or on an escrow
// that does not exist.
func (s *sim) badAction(kind string, a escrow.Action) {
	switch s.rng.IntN(5) {
	case 0, 1:
		if m := s.pick(func(*simEscrow) bool { return true }); m != nil {
			actor := s.wrongActor(m, a)
			s.op = fmt.Sprintf("%s %s by %s (wrong actor)", kind, m.terms.ID, actor)
			s.refuse(kind, escrow.ErrNotParty, func() error { return s.call(a, m.terms.ID, actor) })
			return
		}
	case 2, 3:
		m := s.pick(func(m *simEscrow) bool {
			// Every action fires a run-out timer first and is judged on
			// the state that leaves (see late): a deadline that has
			// passed makes the state wrong for most actions, and after an
			// ignored partial refund request, or a lapsed return, the
			// escrow has resumed, where an action may be allowed.
			return !slices.Contains(actionSpec[a].From, s.afterFire(m)) && (specWho(a) != escrow.Arbiter || m.terms.Arbiter != "")
		})
		if m != nil {
			actor := s.rightActor(m, a)
			s.op = fmt.Sprintf("%s %s by %s in %s (wrong state)", kind, m.terms.ID, actor, m.state)
			s.refuse(kind, escrow.ErrInvalidTransition, func() error { return s.call(a, m.terms.ID, actor) })
			return
		}
	}
	s.op = kind + " of a missing escrow"
	s.refuse(kind, escrow.ErrNotFound, func() error { return s.call(a, "missing", s.users[0]) })
}

// late is what a party's action a on m meets when m's timer has run out
// and ProcessDue has not fired it: the ledger fires it first, as
// ProcessDue would have, and judges a on the state that leaves. Where that
// state refuses a, late makes the call as actor, which must be refused,
// and reports done. Where it allows a, late fires the timer in the model
// and returns its event, which comes before the action's.
func (s *sim) late(kind string, a escrow.Action, m *simEscrow, actor string) (fired []simEvent, done bool) {
	if !s.expired(m) {
		return nil, false
	}
	s.op += ", whose timer ran out"
	if !slices.Contains(actionSpec[a].From, s.afterFire(m)) {
		s.refuse(kind, escrow.ErrInvalidTransition, func() error { return s.call(a, m.terms.ID, actor) })
		return nil, true
	}
	return s.fireAll(m, s.now()), false
}

// The model's moves, mirroring the rules of the state machine.

func (m *simEscrow) enter(st escrow.State, now time.Time) {
	m.state, m.dueAt = st, time.Time{}
	var within time.Duration
	switch st {
	case escrow.AwaitingPayment:
		within = m.timers.PayWithin
	case escrow.AwaitingShipment:
		within = m.timers.ShipWithin
	case escrow.AwaitingConfirmation:
		within = m.timers.ConfirmWithin
	case escrow.RefundRequested:
		within = m.timers.RefundResponseWithin
	case escrow.ReturnRequested:
		within = m.timers.ReturnResponseWithin
	case escrow.AwaitingReturn:
		within = m.timers.ReturnShipWithin
	case escrow.ReturnShipped:
		within = m.timers.ReturnReceiveWithin
	case escrow.ReturnRefused:
		within = m.timers.ReturnDisputeWithin
	case escrow.Disputed:
		within = m.timers.ArbiterWithin // zero: the arbiter has no deadline
	}
	if within > 0 {
		m.dueAt = now.Add(within)
	}
	if st.Terminal() {
		m.paused = 0
	}
}

// simTimers are t with the ledger's defaults in place of its zero fields:
// the fixture gives the ledger no timers of its own.
func simTimers(t escrow.Timers) escrow.Timers {
	d := escrow.DefaultTimers()
	for _, f := range []struct{ v, def *time.Duration }{
		{&t.PayWithin, &d.PayWithin}, {&t.ShipWithin, &d.ShipWithin}, {&t.ConfirmWithin, &d.ConfirmWithin},
		{&t.RefundResponseWithin, &d.RefundResponseWithin}, {&t.ReturnResponseWithin, &d.ReturnResponseWithin},
		{&t.ReturnShipWithin, &d.ReturnShipWithin}, {&t.ReturnReceiveWithin, &d.ReturnReceiveWithin},
		{&t.ReturnDisputeWithin, &d.ReturnDisputeWithin}, {&t.ArbiterWithin, &d.ArbiterWithin},
		{&t.BuyerExtension, &d.BuyerExtension}, {&t.SellerExtensionLimit, &d.SellerExtensionLimit},
	} {
		if *f.v == 0 {
			*f.v = *f.def
		}
	}
	return t
}

func (m *simEscrow) pause(now time.Time) {
	m.paused = 0
	if !m.dueAt.IsZero() && m.dueAt.After(now) {
		m.paused = m.dueAt.Sub(now)
	}
}

func (m *simEscrow) resumeTimer(now time.Time) {
	m.state, m.dueAt = m.resume, now.Add(m.paused)
	m.resume, m.paused = 0, 0
}

// releaseTranches counts as released, in m.next, every milestone that
// something is left of, as releasing all that is held at once does.
// Refunds came off the last tranches first.
func (m *simEscrow) releaseTranches() {
	for left := m.held; m.next < len(m.terms.Milestones) && left > 0; m.next++ {
		left -= m.terms.Milestones[m.next].Amount.Units()
	}
}

// release pays amount of m's held money to the seller, the fee to the
// platform, and returns the fee.
func (s *sim) release(m *simEscrow, amount int64, now time.Time) int64 {
	fee := simFee(amount)
	s.held[m.terms.Buyer] -= amount
	s.avail[m.terms.Seller] += amount - fee
	s.fees += fee
	m.held -= amount
	m.released += amount
	m.fees += fee
	if m.held == 0 {
		m.enter(escrow.Completed, now)
	}
	return fee
}

// refundModel returns amount of m's held money to the buyer.
func (s *sim) refundModel(m *simEscrow, amount int64, now time.Time) {
	s.held[m.terms.Buyer] -= amount
	s.avail[m.terms.Buyer] += amount
	m.held -= amount
	m.refunded += amount
	switch {
	case m.held == 0 && m.released == 0:
		m.enter(escrow.Refunded, now)
	case m.held == 0:
		m.enter(escrow.Completed, now)
	case m.resume != 0: // a refund request or a return ends
		m.resumeTimer(now)
	}
}

// simView is the part of an escrow the model predicts.
type simView struct {
	State                          escrow.State
	Held, Released, Fees, Refunded int64
	NextMilestone                  int
	Resume                         escrow.State  // compared while a refund request or a return is open only
	Paused                         time.Duration // compared then and in Disputed only
	DueAt                          time.Time

	Shipments   int // how many; their contents are checked as they are made
	Extended    escrow.Extensions
	Return      escrow.Return
	Evidence    int // likewise
	EscalatedAt time.Time
	Cart        string
	CartSize    int
}

// simPausing are the states in which the timer of the state before waits.
var simPausing = []escrow.State{escrow.RefundRequested, escrow.ReturnRequested, escrow.AwaitingReturn,
	escrow.ReturnShipped, escrow.ReturnRefused}

func (m *simEscrow) view() simView {
	return simViewOf(simView{State: m.state, Held: m.held, Released: m.released, Fees: m.fees, Refunded: m.refunded,
		NextMilestone: m.next, Resume: m.resume, Paused: m.paused, DueAt: m.dueAt,
		Shipments: m.shipments, Extended: m.extended, Return: m.ret, Evidence: m.evidence,
		EscalatedAt: m.escalatedAt, Cart: m.cart, CartSize: m.cartSize})
}

// simViewOf clears what is not compared in v's state.
func simViewOf(v simView) simView {
	if !slices.Contains(simPausing, v.State) {
		v.Resume = 0
		if v.State != escrow.Disputed {
			v.Paused = 0
		}
	}
	return v
}

func simStoredView(e escrow.Escrow) simView {
	return simViewOf(simView{State: e.State, Held: e.Held.Units(), Released: e.Released.Units(), Fees: e.Fees.Units(),
		Refunded: e.Refunded.Units(), NextMilestone: e.NextMilestone, Resume: e.Resume, Paused: e.Paused, DueAt: e.DueAt,
		Shipments: len(e.Shipments), Extended: e.Extended, Return: e.Return, Evidence: len(e.Evidence),
		EscalatedAt: e.Dispute.EscalatedAt, Cart: e.Cart, CartSize: e.CartSize})
}

// compare fails if the escrow the ledger returned differs from the model.
func (s *sim) compare(got escrow.Escrow, m *simEscrow) {
	s.t.Helper()
	if got.ID != m.terms.ID {
		s.fatalf("got escrow %q, want %q", got.ID, m.terms.ID)
	}
	if diff := cmp.Diff(m.view(), simStoredView(got)); diff != "" {
		s.fatalf("escrow %s differs from the model (-model +ledger):\n%s", m.terms.ID, diff)
	}
}

// simEvent is the part of an event the model predicts.
type simEvent struct {
	Type                   escrow.EventType
	Escrow, Account, Actor string
	ByTimer                bool
	State                  escrow.State
	Amount, Fee            int64
	Note                   string
}

// expectEvents fails unless the events appended since the last check are
// exactly want, stamped with the current time.
func (s *sim) expectEvents(want ...simEvent) {
	s.t.Helper()
	evs, err := s.f.l.Events(s.f.ctx, s.events, len(want)+10)
	if err != nil {
		s.fatalf("Events: %v", err)
	}
	got := make([]simEvent, len(evs))
	for i, ev := range evs {
		if ev.Seq != s.events+uint64(i)+1 || !ev.At.Equal(s.now()) {
			s.fatalf("event %d has Seq %d and time %s, want %d and %s", i, ev.Seq, ev.At, s.events+uint64(i)+1, s.now())
		}
		got[i] = simEvent{Type: ev.Type, Escrow: ev.Escrow, Account: ev.Account, Actor: ev.Actor,
			ByTimer: ev.ByTimer, State: ev.State, Amount: ev.Amount.Units(), Fee: ev.Fee.Units(), Note: ev.Note}
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		s.fatalf("events (-want +got):\n%s", diff)
	}
	s.events += uint64(len(evs))
}

// simEscrowEvent is the event the model expects from a party's action on m.
func simEscrowEvent(typ escrow.EventType, m *simEscrow, actor string, amount, fee int64) simEvent {
	return simEvent{Type: typ, Escrow: m.terms.ID, Actor: actor, State: m.state, Amount: amount, Fee: fee}
}

// noting returns ev with note.
func (ev simEvent) noting(note string) simEvent {
	ev.Note = note
	return ev
}

// Operations.

func (s *sim) deposit(bad bool) {
	u := s.users[s.rng.IntN(len(s.users))]
	amount := 1 + s.rng.Int64N(50000)
	if bad {
		switch s.rng.IntN(3) {
		case 0:
			s.op = "deposit into an unknown account"
			s.refuse(kindDeposit, escrow.ErrNotFound, func() error {
				_, err := s.f.l.Deposit(s.f.ctx, "ghost", fen(amount))
				return err
			})
		case 1:
			s.op = "deposit of nothing into " + u
			s.refuse(kindDeposit, escrow.ErrInvalidAmount, func() error {
				_, err := s.f.l.Deposit(s.f.ctx, u, fen(0))
				return err
			})
		default:
			s.op = "deposit into the fee account"
			s.refuse(kindDeposit, escrow.ErrInvalidArgument, func() error {
				_, err := s.f.l.Deposit(s.f.ctx, escrow.FeeAccount, fen(amount))
				return err
			})
		}
		return
	}
	s.op = fmt.Sprintf("deposit %d into %s", amount, u)
	b, err := s.f.l.Deposit(s.f.ctx, u, fen(amount))
	s.succeed(kindDeposit, err)
	s.avail[u] += amount
	s.deposited += amount
	if b.Available.Units() != s.avail[u] || b.Held.Units() != s.held[u] {
		s.fatalf("Deposit returned %d/%d, want %d/%d", b.Available.Units(), b.Held.Units(), s.avail[u], s.held[u])
	}
	s.expectEvents(simEvent{Type: escrow.Deposited, Account: u, Actor: u, Amount: amount})
}

func (s *sim) withdraw(bad bool) {
	u := s.users[s.rng.IntN(len(s.users))]
	if bad || s.avail[u] == 0 {
		amount := s.avail[u] + 1 + s.rng.Int64N(10000)
		s.op = fmt.Sprintf("withdraw %d from %s holding %d", amount, u, s.avail[u])
		s.refuse(kindWithdraw, escrow.ErrInsufficientFunds, func() error {
			_, err := s.f.l.Withdraw(s.f.ctx, u, fen(amount))
			return err
		})
		return
	}
	amount := 1 + s.rng.Int64N(min(s.avail[u], 80000))
	s.op = fmt.Sprintf("withdraw %d from %s", amount, u)
	b, err := s.f.l.Withdraw(s.f.ctx, u, fen(amount))
	s.succeed(kindWithdraw, err)
	s.avail[u] -= amount
	s.withdrawn += amount
	if b.Available.Units() != s.avail[u] || b.Held.Units() != s.held[u] {
		s.fatalf("Withdraw returned %d/%d, want %d/%d", b.Available.Units(), b.Held.Units(), s.avail[u], s.held[u])
	}
	s.expectEvents(simEvent{Type: escrow.Withdrawn, Account: u, Actor: u, Amount: amount})
}

// newTerms makes random terms under a fresh ID: a price from a few fen (no
// fee) to 300.00, some priced so that the fee is a tie to round; an
// arbiter with or without an account, or none; sometimes milestones; and
// timers from half an hour to a few days, those of a return and the
// extensions sometimes left to the ledger's defaults, the arbiter's
// sometimes set.
func (s *sim) newTerms() escrow.Terms {
	s.nextID++
	id := "e" + strconv.Itoa(s.nextID)
	bi := s.rng.IntN(len(s.users))
	si := (bi + 1 + s.rng.IntN(len(s.users)-1)) % len(s.users)
	var price int64
	switch r := s.rng.IntN(10); {
	case r == 0: // too small to bear a fee
		price = 1 + s.rng.Int64N(200)
	case r == 1: // the fee falls exactly half-way between two fen
		price = 250 + 500*s.rng.Int64N(60)
	default:
		price = 100 + s.rng.Int64N(30000)
	}
	t := escrow.Terms{ID: id, Buyer: s.users[bi], Seller: s.users[si], Price: fen(price), Item: "item " + id}
	switch r := s.rng.IntN(10); {
	case r < 3: // no arbiter
	case r < 6:
		t.Arbiter = "arbiter"
	default:
		for t.Arbiter == "" || t.Arbiter == t.Buyer || t.Arbiter == t.Seller {
			t.Arbiter = s.users[s.rng.IntN(len(s.users))]
		}
	}
	if price >= 4 && s.rng.IntN(10) < 3 {
		n := 2 + s.rng.IntN(3)
		cuts := []int64{0, price}
		for len(cuts) < n+1 {
			if c := 1 + s.rng.Int64N(price-1); !slices.Contains(cuts, c) {
				cuts = append(cuts, c)
			}
		}
		slices.Sort(cuts)
		for i := 1; i < len(cuts); i++ {
			t.Milestones = append(t.Milestones, escrow.Milestone{Name: "part " + strconv.Itoa(i), Amount: fen(cuts[i] - cuts[i-1])})
		}
	}
	timer := func() time.Duration { return time.Duration(30+s.rng.IntN(72*60)) * time.Minute }
	t.Timers = escrow.Timers{PayWithin: timer(), ShipWithin: timer(), ConfirmWithin: timer(), RefundResponseWithin: timer()}
	if s.rng.IntN(5) > 0 { // else the ledger's defaults, of days
		// A return's last two deadlines are often the shortest, so that
		// a run sees them pass before a party acts, but not always, so
		// that it sees the parties act in time as well.
		short := func() time.Duration {
			if s.rng.IntN(2) == 0 {
				return timer()
			}
			return time.Duration(5+s.rng.IntN(6*60)) * time.Minute
		}
		t.Timers.ReturnResponseWithin, t.Timers.ReturnShipWithin = timer(), timer()
		t.Timers.ReturnReceiveWithin, t.Timers.ReturnDisputeWithin = short(), short()
		t.Timers.BuyerExtension = time.Duration(10+s.rng.IntN(24*60)) * time.Minute
		t.Timers.SellerExtensionLimit = time.Duration(30+s.rng.IntN(48*60)) * time.Minute
	}
	if t.Arbiter != "" && s.rng.IntN(2) == 0 {
		t.Timers.ArbiterWithin = timer()
	}
	return t
}

func (s *sim) open(bad bool) {
	if !bad && s.live() >= 30 {
		s.skipped = true
		return
	}
	if !bad {
		t := s.newTerms()
		s.op = fmt.Sprintf("open %s: %s pays %s %d fen, arbiter %q, %d milestones",
			t.ID, t.Buyer, t.Seller, t.Price.Units(), t.Arbiter, len(t.Milestones))
		e, err := s.f.l.Open(s.f.ctx, t)
		s.succeed(kindOpen, err)
		m := &simEscrow{terms: t, timers: simTimers(t.Timers)}
		m.enter(escrow.AwaitingPayment, s.now())
		s.escrows = append(s.escrows, m)
		s.active = append(s.active, m)
		s.byID[t.ID] = m
		s.compare(e, m)
		s.expectEvents(simEscrowEvent(escrow.EscrowOpened, m, t.Buyer, t.Price.Units(), 0).noting(t.Item))
		return
	}
	t := s.newTerms()
	open := func() error { _, err := s.f.l.Open(s.f.ctx, t); return err }
	switch s.rng.IntN(4) {
	case 0:
		t.Seller = t.Buyer
		s.op = "open with the buyer as seller"
		s.refuse(kindOpen, escrow.ErrInvalidArgument, open)
	case 1:
		if m := s.pick(func(*simEscrow) bool { return true }); m != nil {
			t = m.terms
			t.Item = "something else"
			s.op = "open " + t.ID + " again with other terms"
			s.refuse(kindOpen, escrow.ErrExists, open)
			return
		}
		fallthrough
	case 2:
		t.Seller = "ghost"
		s.op = "open with an unknown seller"
		s.refuse(kindOpen, escrow.ErrNotFound, open)
	default:
		t.Milestones = []escrow.Milestone{{Name: "one fen too many", Amount: fen(t.Price.Units() + 1)}}
		s.op = "open with milestones that do not add up"
		s.refuse(kindOpen, escrow.ErrInvalidArgument, open)
	}
}

// reopen opens an existing escrow again with its own terms: a no-op that
// returns the escrow as it is now.
func (s *sim) reopen(bool) {
	m := s.pick(func(*simEscrow) bool { return true })
	if m == nil {
		s.skipped = true
		return
	}
	s.op = "reopen " + m.terms.ID + " with the same terms"
	before := s.mark()
	e, err := s.f.l.Open(s.f.ctx, m.terms)
	if err != nil {
		s.fatalf("unexpected error: %v", err)
	}
	s.compare(e, m)
	s.sameStore(before)
	s.count(kindReopen, true)
}

func (s *sim) pay(bad bool) {
	m := s.pickOnTime(simInState(escrow.AwaitingPayment))
	if m == nil && !bad {
		s.skipped = true
		return
	}
	if bad {
		s.badAction(kindPay, escrow.ActionPay)
		return
	}
	buyer, price := m.terms.Buyer, m.terms.Price.Units()
	s.op = fmt.Sprintf("pay %s: %s with %d available pays %d", m.terms.ID, buyer, s.avail[buyer], price)
	fired, done := s.late(kindPay, escrow.ActionPay, m, buyer)
	if done {
		return
	}
	if s.avail[buyer] < price {
		s.refuse(kindPay, escrow.ErrInsufficientFunds, func() error { return s.call(escrow.ActionPay, m.terms.ID, buyer) })
		return
	}
	e, err := s.f.l.Pay(s.f.ctx, m.terms.ID, buyer)
	s.succeed(kindPay, err)
	s.avail[buyer] -= price
	s.held[buyer] += price
	m.held = price
	m.enter(escrow.AwaitingShipment, s.now())
	s.compare(e, m)
	s.expectEvents(append(fired, simEscrowEvent(escrow.EscrowPaid, m, buyer, price, 0))...)
}

func (s *sim) ship(bad bool) {
	m := s.pickOnTime(simInState(escrow.AwaitingShipment))
	if m == nil && !bad {
		s.skipped = true
		return
	}
	if bad {
		s.badAction(kindShip, escrow.ActionShip)
		return
	}
	tracking := ""
	if s.rng.IntN(2) == 0 {
		tracking = "SF" + strconv.Itoa(s.rng.IntN(1e9))
	}
	s.op = "ship " + m.terms.ID
	fired, done := s.late(kindShip, escrow.ActionShip, m, m.terms.Seller)
	if done {
		return
	}
	e, err := s.f.l.Ship(s.f.ctx, m.terms.ID, m.terms.Seller, tracking)
	s.succeed(kindShip, err)
	m.enter(escrow.AwaitingConfirmation, s.now())
	s.compare(e, m)
	if e.Tracking != tracking {
		s.fatalf("tracking %q, want %q", e.Tracking, tracking)
	}
	s.expectEvents(append(fired, simEscrowEvent(escrow.EscrowShipped, m, m.terms.Seller, 0, 0).noting(tracking))...)
}

func (s *sim) confirm(bad bool) {
	m := s.pickOnTime(simInState(escrow.AwaitingConfirmation))
	if m == nil && !bad {
		s.skipped = true
		return
	}
	if bad {
		s.badAction(kindConfirm, escrow.ActionConfirm)
		return
	}
	s.op = fmt.Sprintf("confirm %s holding %d", m.terms.ID, m.held)
	fired, done := s.late(kindConfirm, escrow.ActionConfirm, m, m.terms.Buyer)
	if done {
		return
	}
	e, err := s.f.l.Confirm(s.f.ctx, m.terms.ID, m.terms.Buyer)
	s.succeed(kindConfirm, err)
	amount := m.held
	m.releaseTranches()
	fee := s.release(m, amount, s.now())
	s.compare(e, m)
	s.expectEvents(append(fired, simEscrowEvent(escrow.EscrowReleased, m, m.terms.Buyer, amount, fee))...)
}

func (s *sim) confirmMilestone(bad bool) {
	m := s.pickOnTime(func(m *simEscrow) bool {
		return m.state == escrow.AwaitingConfirmation && len(m.terms.Milestones) > 0
	})
	if m == nil && !bad {
		s.skipped = true
		return
	}
	if bad {
		confirmN := func(m *simEscrow, n int) func() error {
			return func() error {
				_, err := s.f.l.ConfirmMilestone(s.f.ctx, m.terms.ID, m.terms.Buyer, n)
				return err
			}
		}
		switch s.rng.IntN(3) {
		case 0:
			if m != nil {
				n := m.next + 1
				if m.next > 0 && s.rng.IntN(2) == 0 {
					n = m.next - 1
				}
				s.op = fmt.Sprintf("confirm milestone %d of %s, next is %d", n, m.terms.ID, m.next)
				s.refuse(kindConfirmMilestone, s.unlessEnded(m, escrow.ErrInvalidArgument), confirmN(m, n))
				return
			}
		case 1:
			plain := s.pick(func(m *simEscrow) bool {
				return m.state == escrow.AwaitingConfirmation && len(m.terms.Milestones) == 0
			})
			if plain != nil {
				s.op = "confirm a milestone of " + plain.terms.ID + ", which has none"
				s.refuse(kindConfirmMilestone, s.unlessEnded(plain, escrow.ErrInvalidArgument), confirmN(plain, 0))
				return
			}
		}
		s.badAction(kindConfirmMilestone, escrow.ActionConfirmMilestone)
		return
	}
	n := m.next
	amount := m.terms.Milestones[n].Amount.Units()
	if amount > m.held || n == len(m.terms.Milestones)-1 {
		amount = m.held
	}
	s.op = fmt.Sprintf("confirm milestone %d of %d of %s holding %d", n, len(m.terms.Milestones), m.terms.ID, m.held)
	fired, done := s.late(kindConfirmMilestone, escrow.ActionConfirmMilestone, m, m.terms.Buyer)
	if done {
		return
	}
	e, err := s.f.l.ConfirmMilestone(s.f.ctx, m.terms.ID, m.terms.Buyer, n)
	s.succeed(kindConfirmMilestone, err)
	m.next++
	fee := s.release(m, amount, s.now())
	s.compare(e, m)
	s.expectEvents(append(fired, simEscrowEvent(escrow.EscrowReleased, m, m.terms.Buyer, amount, fee).noting(m.terms.Milestones[n].Name))...)
}

func (s *sim) cancel(bad bool) {
	m := s.pickOnTime(simInState(escrow.AwaitingPayment))
	if m == nil && !bad {
		s.skipped = true
		return
	}
	if bad {
		s.badAction(kindCancel, escrow.ActionCancel)
		return
	}
	actor := s.rightActor(m, escrow.ActionCancel)
	s.op = "cancel " + m.terms.ID + " by " + actor
	fired, done := s.late(kindCancel, escrow.ActionCancel, m, actor)
	if done {
		return
	}
	e, err := s.f.l.Cancel(s.f.ctx, m.terms.ID, actor)
	s.succeed(kindCancel, err)
	m.enter(escrow.Closed, s.now())
	s.compare(e, m)
	s.expectEvents(append(fired, simEscrowEvent(escrow.EscrowClosed, m, actor, 0, 0))...)
}

// refund is the seller's own refund, of everything held or of part of it.
func (s *sim) refund(bad, full bool) {
	kind := kindRefundPartial
	if full {
		kind = kindRefundFull
	}
	m := s.pickOnTime(func(m *simEscrow) bool {
		return (m.state == escrow.AwaitingShipment || m.state == escrow.AwaitingConfirmation) && (full || m.held >= 2)
	})
	if m == nil && !bad {
		s.skipped = true
		return
	}
	if bad {
		if m != nil {
			switch s.rng.IntN(3) {
			case 0:
				amount := m.held + 1 + s.rng.Int64N(1000)
				s.op = fmt.Sprintf("refund %d of the %d held by %s", amount, m.held, m.terms.ID)
				s.refuse(kind, s.unlessEnded(m, escrow.ErrInvalidAmount), func() error {
					_, err := s.f.l.Refund(s.f.ctx, m.terms.ID, m.terms.Seller, fen(amount))
					return err
				})
				return
			case 1:
				s.op = "refund " + m.terms.ID + " in dollars"
				s.refuse(kind, s.unlessEnded(m, escrow.ErrCurrencyMismatch), func() error {
					_, err := s.f.l.Refund(s.f.ctx, m.terms.ID, m.terms.Seller, simUSD)
					return err
				})
				return
			}
		}
		s.badAction(kind, escrow.ActionRefund)
		return
	}
	amount := m.held
	if !full {
		amount = 1 + s.rng.Int64N(m.held-1)
	}
	s.op = fmt.Sprintf("refund %d of the %d held by %s", amount, m.held, m.terms.ID)
	fired, done := s.late(kind, escrow.ActionRefund, m, m.terms.Seller)
	if done {
		return
	}
	e, err := s.f.l.Refund(s.f.ctx, m.terms.ID, m.terms.Seller, fen(amount))
	s.succeed(kind, err)
	s.refundModel(m, amount, s.now())
	s.compare(e, m)
	s.expectEvents(append(fired, simEscrowEvent(escrow.EscrowRefunded, m, m.terms.Seller, amount, 0))...)
}

func (s *sim) requestRefund(bad bool) {
	s.request(bad, simRequest{kind: kindRequestRefund, action: escrow.ActionRequestRefund, noun: "refund",
		from: []escrow.State{escrow.AwaitingShipment, escrow.AwaitingConfirmation},
		to:   escrow.RefundRequested, event: escrow.EscrowRefundRequested,
		call: func(m *simEscrow, amount int64, reason string) (escrow.Escrow, error) {
			return s.f.l.RequestRefund(s.f.ctx, m.terms.ID, m.terms.Buyer, fen(amount), reason)
		}})
}

// A simRequest is the buyer asking for money back: a refund request, or
// a return (the goods first).
type simRequest struct {
	kind   string
	action escrow.Action
	noun   string // "refund" or "return", for the operation's description
	from   []escrow.State
	to     escrow.State
	event  escrow.EventType
	call   func(m *simEscrow, amount int64, reason string) (escrow.Escrow, error)
	// longReason tries a reason too long among the bad calls. (The
	// refund request leaves it to the rejected-call check, so that its
	// draws, and the runs the seeds give, stay as they were.)
	longReason bool
}

// request makes the buyer's request r: for all that is held or part of
// it, refused for more than is held, for a reason too long (if
// r.longReason), and by the wrong party or in the wrong state.
func (s *sim) request(bad bool, r simRequest) {
	m := s.pick(simInState(r.from...))
	if m == nil && !bad {
		s.skipped = true
		return
	}
	if bad {
		if m != nil {
			ways := 2 // too much, or the wrong party or state
			if r.longReason {
				ways = 3 // or a reason too long
			}
			switch k := s.rng.IntN(ways); {
			case k == 0:
				amount := m.held + 1 + s.rng.Int64N(1000)
				s.op = fmt.Sprintf("request a %s of %d of the %d held by %s", r.noun, amount, m.held, m.terms.ID)
				want := escrow.ErrInvalidAmount
				if s.expired(m) { // the timer ends the escrow first
					want = escrow.ErrInvalidTransition
				}
				s.refuse(r.kind, want, func() error {
					_, err := r.call(m, amount, "too much")
					return err
				})
				return
			case k == 1 && r.longReason:
				s.refuseText(r.kind, "a reason of 1,001 bytes", func() error {
					_, err := r.call(m, 1, simLong[:1001])
					return err
				})
				return
			}
		}
		s.badAction(r.kind, r.action)
		return
	}
	amount := m.held
	if s.rng.IntN(2) == 0 {
		amount = 1 + s.rng.Int64N(m.held)
	}
	s.op = fmt.Sprintf("request a %s of %d of the %d held by %s", r.noun, amount, m.held, m.terms.ID)
	if s.expired(m) {
		s.op += ", whose timer ran out"
		s.refuse(r.kind, escrow.ErrInvalidTransition, func() error {
			_, err := r.call(m, amount, "not as described")
			return err
		})
		return
	}
	e, err := r.call(m, amount, "not as described")
	s.succeed(r.kind, err)
	now := s.now()
	m.asked = amount
	if r.to == escrow.ReturnRequested {
		m.ret = escrow.Return{}
	}
	m.resume = m.state
	m.pause(now)
	m.enter(r.to, now)
	s.compare(e, m)
	if e.Refund.Amount.Units() != amount || e.Refund.Reason != "not as described" || !e.Refund.At.Equal(now) {
		s.fatalf("%s request %+v, want %d at %s", r.noun, e.Refund, amount, now)
	}
	s.expectEvents(simEscrowEvent(r.event, m, m.terms.Buyer, amount, 0).noting("not as described"))
}

func (s *sim) agreeRefund(bad bool) {
	m := s.pickOnTime(simInState(escrow.RefundRequested))
	if m == nil && !bad {
		s.skipped = true
		return
	}
	if bad {
		s.badAction(kindAgreeRefund, escrow.ActionAgreeRefund)
		return
	}
	s.op = fmt.Sprintf("agree to refund %d of the %d held by %s", m.asked, m.held, m.terms.ID)
	fired, done := s.late(kindAgreeRefund, escrow.ActionAgreeRefund, m, m.terms.Seller)
	if done {
		return
	}
	e, err := s.f.l.AgreeRefund(s.f.ctx, m.terms.ID, m.terms.Seller)
	s.succeed(kindAgreeRefund, err)
	amount := m.asked
	s.refundModel(m, amount, s.now())
	s.compare(e, m)
	s.expectEvents(append(fired, simEscrowEvent(escrow.EscrowRefunded, m, m.terms.Seller, amount, 0))...)
}

// refuseRefund turns down a refund request or a return request.
func (s *sim) refuseRefund(bad bool) {
	m := s.pickOnTime(simInState(escrow.RefundRequested, escrow.ReturnRequested))
	if m == nil && !bad {
		s.skipped = true
		return
	}
	if bad {
		s.badAction(kindRefuseRefund, escrow.ActionRefuseRefund)
		return
	}
	s.op = "refuse the refund on " + m.terms.ID + " in " + m.state.String()
	fired, done := s.late(kindRefuseRefund, escrow.ActionRefuseRefund, m, m.terms.Seller)
	if done {
		return
	}
	e, err := s.f.l.RefuseRefund(s.f.ctx, m.terms.ID, m.terms.Seller, "it arrived whole")
	s.succeed(kindRefuseRefund, err)
	m.resumeTimer(s.now())
	s.compare(e, m)
	if e.Refund.RefuseReason != "it arrived whole" || !e.Refund.RefusedAt.Equal(s.now()) {
		s.fatalf("refund request %+v, want refused now", e.Refund)
	}
	s.expectEvents(append(fired, simEscrowEvent(escrow.EscrowRefundRefused, m, m.terms.Seller, 0, 0).noting("it arrived whole"))...)
}

func (s *sim) dispute(bad bool) {
	disputable := simInState(escrow.AwaitingShipment, escrow.AwaitingConfirmation, escrow.RefundRequested,
		escrow.ReturnRequested, escrow.AwaitingReturn, escrow.ReturnShipped, escrow.ReturnRefused)
	m := s.pick(func(m *simEscrow) bool { return disputable(m) && m.terms.Arbiter != "" })
	if m == nil && !bad {
		s.skipped = true
		return
	}
	if bad {
		if lone := s.pick(func(m *simEscrow) bool { return disputable(m) && m.terms.Arbiter == "" }); lone != nil && s.rng.IntN(2) == 0 {
			actor := s.rightActor(lone, escrow.ActionDispute)
			s.op = "dispute " + lone.terms.ID + ", which has no arbiter"
			want := escrow.ErrNoArbiter
			if s.endsWhenFired(lone) {
				want = escrow.ErrInvalidTransition
			}
			s.refuse(kindDispute, want, func() error { return s.call(escrow.ActionDispute, lone.terms.ID, actor) })
			return
		}
		s.badAction(kindDispute, escrow.ActionDispute)
		return
	}
	actor := s.rightActor(m, escrow.ActionDispute)
	s.op = fmt.Sprintf("dispute %s in %s by %s", m.terms.ID, m.state, actor)
	now := s.now()
	var want []simEvent
	if s.expired(m) {
		s.op += ", whose timer ran out"
		if s.endsWhenFired(m) {
			s.refuse(kindDispute, escrow.ErrInvalidTransition, func() error { return s.call(escrow.ActionDispute, m.terms.ID, actor) })
			return
		}
		// The timer fires first: a refund is made as asked, or a return
		// is agreed to or lapses. Then the dispute is of what that left.
		want = append(want, s.fireAll(m, now)...)
	}
	e, err := s.f.l.Dispute(s.f.ctx, m.terms.ID, actor, "no agreement")
	s.succeed(kindDispute, err)
	if m.resume == 0 { // else a refund request or a return paused the timer already
		m.pause(now)
	}
	m.enter(escrow.Disputed, now)
	s.compare(e, m)
	s.expectEvents(append(want, simEscrowEvent(escrow.EscrowDisputed, m, actor, 0, 0).noting("no agreement"))...)
}

// part is a split's share: a zero share is given either as zero CNY or as
// the zero Money, which the ledger must read alike.
func (s *sim) part(units int64) escrow.Money {
	if units == 0 && s.rng.IntN(2) == 0 {
		return escrow.Money{}
	}
	return fen(units)
}

func (s *sim) resolve(bad bool) {
	m := s.pickOnTime(simInState(escrow.Disputed))
	if m == nil && !bad {
		s.skipped = true
		return
	}
	if bad {
		if m != nil {
			resolve := func(sp escrow.Split) func() error {
				return func() error { _, err := s.f.l.Resolve(s.f.ctx, m.terms.ID, m.terms.Arbiter, sp); return err }
			}
			switch s.rng.IntN(3) {
			case 0:
				toBuyer := s.rng.Int64N(m.held + 1)
				toSeller := m.held - toBuyer + 1
				if toSeller > 1 && s.rng.IntN(2) == 0 {
					toSeller -= 2
				}
				s.op = fmt.Sprintf("resolve %s holding %d as %d + %d", m.terms.ID, m.held, toBuyer, toSeller)
				s.refuse(kindResolve, escrow.ErrInvalidArgument, resolve(escrow.Split{Buyer: s.part(toBuyer), Seller: s.part(toSeller)}))
				return
			case 1:
				s.op = "resolve " + m.terms.ID + " with a part in dollars"
				s.refuse(kindResolve, escrow.ErrCurrencyMismatch, resolve(escrow.Split{Buyer: simUSD, Seller: fen(m.held)}))
				return
			}
		}
		s.badAction(kindResolve, escrow.ActionResolve)
		return
	}
	var toBuyer int64
	switch r := s.rng.IntN(4); r {
	case 0:
	case 1:
		toBuyer = m.held
	default:
		toBuyer = s.rng.Int64N(m.held + 1)
	}
	toSeller := m.held - toBuyer
	s.op = fmt.Sprintf("resolve %s holding %d as %d + %d", m.terms.ID, m.held, toBuyer, toSeller)
	fired, done := s.late(kindResolve, escrow.ActionResolve, m, m.terms.Arbiter)
	if done {
		return
	}
	e, err := s.f.l.Resolve(s.f.ctx, m.terms.ID, m.terms.Arbiter, escrow.Split{Buyer: s.part(toBuyer), Seller: s.part(toSeller)})
	s.succeed(kindResolve, err)
	amount, fee := m.held, simFee(toSeller)
	s.held[m.terms.Buyer] -= amount
	s.avail[m.terms.Buyer] += toBuyer
	s.avail[m.terms.Seller] += toSeller - fee
	s.fees += fee
	m.held = 0
	m.refunded += toBuyer
	m.released += toSeller
	m.fees += fee
	m.enter(escrow.Resolved, s.now())
	s.compare(e, m)
	s.expectEvents(append(fired, simEscrowEvent(escrow.EscrowResolved, m, m.terms.Arbiter, amount, fee).
		noting("buyer "+simYuan(toBuyer)+", seller "+simYuan(toSeller)))...)
}

func (s *sim) advance(bool) {
	d := time.Duration(5+s.rng.IntN(30*60)) * time.Minute
	s.op = "advance the clock by " + d.String()
	s.f.clock.Advance(d)
	s.count(kindAdvance, true)
}

// waitForDeadline moves the clock to 1 ns before a running deadline and
// runs the timers, which must leave that one be, then to the deadline and
// runs them again, which must fire it. The deadline is of a return or a
// dispute, in a state drawn from those that have one running: an escrow
// passes through them quickly, and without this their timers would seldom
// fire in a short run.
func (s *sim) waitForDeadline(bool) {
	var states []escrow.State
	byState := map[escrow.State][]*simEscrow{}
	for _, m := range s.active {
		if m.dueAt.After(s.now()) && (m.state == escrow.Disputed || slices.Contains(simPausing[1:], m.state)) {
			if byState[m.state] == nil {
				states = append(states, m.state)
			}
			byState[m.state] = append(byState[m.state], m)
		}
	}
	if len(states) == 0 {
		s.skipped = true
		return
	}
	// A state whose timer has not fired yet comes first.
	var unfired []escrow.State
	for _, st := range states {
		if c := s.counts[simTimerKind[st]]; c == nil || c.ok == 0 {
			unfired = append(unfired, st)
		}
	}
	if len(unfired) > 0 {
		states = unfired
	}
	ms := byState[states[s.rng.IntN(len(states))]]
	m := ms[s.rng.IntN(len(ms))]
	due, state := m.dueAt, m.state
	s.f.clock.Advance(due.Sub(s.now()) - 1)
	s.processDue()
	if !m.dueAt.Equal(due) || m.state != state {
		s.fatalf("%s's timer, due at %s, fired 1 ns before", m.terms.ID, due)
	}
	s.f.clock.Advance(1)
	s.processDue()
	if m.dueAt.Equal(due) && m.state == state {
		s.fatalf("%s's timer, due at %s, did not fire then", m.terms.ID, due)
	}
	s.count(kindWaitForDeadline, true)
}

// processDue runs the timers. The model fires every escrow whose deadline
// has passed, in deadline order, ties by ID, the way the due index lists
// them, and with each the deadlines its timers start that have passed
// too.
func (s *sim) processDue() {
	now := s.now()
	var due []*simEscrow
	for _, m := range s.active { // an ended escrow has no timer
		if !m.dueAt.IsZero() && !m.dueAt.After(now) {
			due = append(due, m)
		}
	}
	slices.SortFunc(due, func(a, b *simEscrow) int {
		if c := a.dueAt.Compare(b.dueAt); c != 0 {
			return c
		}
		return strings.Compare(a.terms.ID, b.terms.ID)
	})
	s.op = fmt.Sprintf("process %d due escrows", len(due))
	n, err := s.f.l.ProcessDue(s.f.ctx)
	if err != nil {
		s.fatalf("ProcessDue: %v", err)
	}
	s.count(kindProcessDue, true)
	want := make([]simEvent, 0, len(due))
	for _, m := range due {
		want = append(want, s.fireAll(m, now)...)
		e, err := s.f.l.Escrow(s.f.ctx, m.terms.ID)
		if err != nil {
			s.fatalf("Escrow(%q): %v", m.terms.ID, err)
		}
		s.compare(e, m)
	}
	if n != len(want) {
		s.fatalf("ProcessDue fired %d timers, want %d", n, len(want))
	}
	s.expectEvents(want...)
}

// fireAll fires m's expired timer in the model, and each timer that one
// starts whose deadline has passed by now too, and returns their events.
func (s *sim) fireAll(m *simEscrow, now time.Time) []simEvent {
	var evs []simEvent
	for !m.dueAt.IsZero() && !m.dueAt.After(now) {
		evs = append(evs, s.fireTimer(m, now))
	}
	return evs
}

// fireTimer runs m's expired timer in the model and returns its event.
// The deadline it starts runs from when its own passed.
func (s *sim) fireTimer(m *simEscrow, now time.Time) simEvent {
	var ev simEvent
	due := m.dueAt
	defer func() {
		if !m.dueAt.IsZero() {
			m.dueAt = m.dueAt.Add(due.Sub(now))
		}
	}()
	switch m.state {
	case escrow.AwaitingPayment:
		m.enter(escrow.Closed, now)
		ev = simEscrowEvent(escrow.EscrowClosed, m, "", 0, 0)
		s.count(kindTimerClose, true)
	case escrow.AwaitingShipment:
		amount := m.held
		s.refundModel(m, amount, now)
		ev = simEscrowEvent(escrow.EscrowRefunded, m, "", amount, 0)
		s.count(kindTimerRefund, true)
	case escrow.AwaitingConfirmation:
		amount := m.held
		m.releaseTranches()
		fee := s.release(m, amount, now)
		ev = simEscrowEvent(escrow.EscrowReleased, m, "", amount, fee)
		s.count(kindTimerConfirm, true)
	case escrow.RefundRequested:
		amount := m.asked
		s.refundModel(m, amount, now)
		ev = simEscrowEvent(escrow.EscrowRefunded, m, "", amount, 0)
		s.count(kindTimerAsRequest, true)
	case escrow.ReturnRequested: // agreed to, with no address
		m.ret = escrow.Return{AgreedAt: now}
		m.enter(escrow.AwaitingReturn, now)
		ev = simEscrowEvent(escrow.EscrowReturnAgreed, m, "", 0, 0)
		s.count(kindTimerAgreeReturn, true)
	case escrow.AwaitingReturn, escrow.ReturnRefused: // the return ends; the trade resumes
		kind := kindTimerReturnLapsed
		if m.state == escrow.ReturnRefused {
			kind = kindTimerRefusalStands
		}
		m.resumeTimer(now)
		ev = simEscrowEvent(escrow.EscrowReturnCancelled, m, "", 0, 0)
		s.count(kind, true)
	case escrow.ReturnShipped: // taken as received
		m.ret.ReceivedAt = now
		amount := m.asked
		s.refundModel(m, amount, now)
		ev = simEscrowEvent(escrow.EscrowRefunded, m, "", amount, 0)
		s.count(kindTimerReturnRefund, true)
	case escrow.Disputed:
		m.escalatedAt, m.dueAt = now, time.Time{}
		ev = simEscrowEvent(escrow.EscrowEscalated, m, "", 0, 0)
		s.count(kindTimerEscalate, true)
	default:
		s.fatalf("the model has %s due in %s", m.terms.ID, m.state)
	}
	ev.ByTimer = true
	return ev
}

// expired reports whether m's running timer has run out, unfired. Every
// action then finds it fired first (see late).
func (s *sim) expired(m *simEscrow) bool {
	return !m.dueAt.IsZero() && !m.dueAt.After(s.now())
}

// afterFire returns the state m is in once its run-out timer has fired,
// with those it starts that have run out too; its state, if its timer has
// not run out. It fires them on copies of m and of the balances.
func (s *sim) afterFire(m *simEscrow) escrow.State {
	if !s.expired(m) {
		return m.state
	}
	scratch := &sim{t: s.t, f: s.f, seed: s.seed, step: s.step, op: s.op,
		held: maps.Clone(s.held), avail: maps.Clone(s.avail), counts: map[string]*simCount{}}
	c := *m
	scratch.fireAll(&c, s.now())
	return c.state
}

// endsWhenFired reports whether m's timer has run out and firing it ends
// the escrow: every timer does but those of refund requests and returns,
// which end it only when all that is held was asked for, and those that
// leave it where it was.
func (s *sim) endsWhenFired(m *simEscrow) bool {
	return s.expired(m) && s.afterFire(m).Terminal()
}

// unlessEnded is want, the error of a bad call on m, unless m's run-out
// timer ends the escrow first: then the call finds it ended.
func (s *sim) unlessEnded(m *simEscrow, want error) error {
	if s.endsWhenFired(m) {
		return escrow.ErrInvalidTransition
	}
	return want
}

// verify runs the invariant checker and compares every balance with the
// model.
func (s *sim) verify() {
	s.t.Helper()
	if s.wholeStore() {
		if err := s.f.l.Check(s.f.ctx); err != nil {
			s.fatalf("invariants: %v", err)
		}
		s.dumpDue = true
	}
	for _, u := range s.users {
		if a, h := s.f.balance(u); a != s.avail[u] || h != s.held[u] {
			s.fatalf("%s has %d available and %d held, the model says %d and %d", u, a, h, s.avail[u], s.held[u])
		}
	}
	if a, h := s.f.balance(escrow.FeeAccount); a != s.fees || h != 0 {
		s.fatalf("the fee account has %d/%d, the model says %d/0", a, h, s.fees)
	}
	if a, _ := s.f.balance(escrow.WorldAccount); a != s.withdrawn-s.deposited {
		s.fatalf("the world account has %d, want withdrawals %d minus deposits %d", a, s.withdrawn, s.deposited)
	}
	// Move the footprint's view of the journal up to now.
	var tail []escrow.Entry
	err := s.f.store.View(s.f.ctx, func(tx escrow.Tx) (err error) {
		tail, err = tx.Journal(s.journal, 1<<30)
		return err
	})
	if err != nil {
		s.fatalf("Journal: %v", err)
	}
	if len(tail) > 0 {
		s.journal = tail[len(tail)-1].Seq
	}
}

// finish compares every escrow and the money totals with the model, logs
// what the run did and fails if some kind of operation never succeeded or,
// for those that can fail, never failed. A short run (full false) is too
// short to be sure of every kind of timer.
func (s *sim) finish(full bool) {
	s.op = "final check"
	s.finished = true
	s.verify()
	var stored []escrow.Escrow
	err := s.f.store.View(s.f.ctx, func(tx escrow.Tx) error {
		return tx.Escrows(func(e escrow.Escrow) error { stored = append(stored, e); return nil })
	})
	if err != nil {
		s.fatalf("Escrows: %v", err)
	}
	if len(stored) != len(s.escrows) {
		s.fatalf("the store has %d escrows, the model %d", len(stored), len(s.escrows))
	}
	var escrowFees, users int64
	for _, e := range stored {
		m := s.byID[e.ID]
		if m == nil {
			s.fatalf("the store has escrow %q the model never opened", e.ID)
		}
		s.compare(e, m)
		escrowFees += e.Fees.Units()
	}
	feeBalance, _ := s.f.balance(escrow.FeeAccount)
	if escrowFees != feeBalance || feeBalance != s.fees {
		s.fatalf("the escrows' fees add up to %d, the fee account holds %d, the model says %d", escrowFees, feeBalance, s.fees)
	}
	for _, u := range s.users {
		a, h := s.f.balance(u)
		users += a + h
	}
	if users+feeBalance != s.deposited-s.withdrawn {
		s.fatalf("users hold %d and fees %d, together %d, but deposits minus withdrawals are %d",
			users, feeBalance, users+feeBalance, s.deposited-s.withdrawn)
	}
	if evs, err := s.f.l.Events(s.f.ctx, s.events, 10); err != nil || len(evs) != 0 {
		s.fatalf("events the model did not expect: %v (error %v)", evs, err)
	}

	var summary strings.Builder
	var kinds []string
	for _, op := range s.ops {
		kinds = append(kinds, op.kind)
	}
	kinds = append(kinds, timerKinds...)
	for _, k := range kinds {
		c := s.counts[k]
		if c == nil {
			c = &simCount{}
		}
		fmt.Fprintf(&summary, "\n  %-26s %5d ok %5d refused", k, c.ok, c.refused)
	}
	s.t.Logf("seed %d: %d steps, %d escrows, fees %d fen:%s", s.seed, s.step-1, len(s.escrows), s.fees, summary.String())
	for _, k := range kinds {
		c := s.counts[k]
		if c == nil {
			c = &simCount{}
		}
		if c.ok == 0 && (full || !strings.HasPrefix(k, "timer:")) {
			s.t.Errorf("seed %d: no %s ever succeeded", s.seed, k)
		}
		if c.refused == 0 && !slices.Contains(alwaysSucceed, k) {
			s.t.Errorf("seed %d: no %s was ever refused", s.seed, k)
		}
	}
}
