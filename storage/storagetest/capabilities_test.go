package storagetest_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/memstore"
	"github.com/escrowkit/escrow/storage/storagetest"
)

// capStore is a memstore with the optional capabilities: its Tx is a
// BalanceAdder and an EscrowClaimer, and it is an EventNotifier. With
// fault set, one rule of one capability is broken, and the suite must
// fail it.
type capStore struct {
	*memstore.Store
	fault  string
	mu     sync.Mutex
	ch     chan struct{} // closed, and dropped, by the next commit
	closed bool
}

func (s *capStore) Close() error {
	s.mu.Lock()
	s.closed = true
	if s.ch != nil && s.fault != "notify-not-on-close" {
		close(s.ch)
		s.ch = nil
	}
	s.mu.Unlock()
	return s.Store.Close()
}

func (s *capStore) Update(ctx context.Context, fn func(escrow.Tx) error) error {
	err := s.Store.Update(ctx, func(tx escrow.Tx) error { return fn(capTx{Tx: tx, fault: s.fault, write: true}) })
	if err == nil && s.fault != "notify-never" {
		s.mu.Lock()
		if s.ch != nil {
			close(s.ch)
			s.ch = nil
		}
		s.mu.Unlock()
	}
	return err
}

func (s *capStore) View(ctx context.Context, fn func(escrow.Tx) error) error {
	return s.Store.View(ctx, func(tx escrow.Tx) error { return fn(capTx{Tx: tx, fault: s.fault}) })
}

func (s *capStore) EventsCommitted() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	ch := s.ch
	if s.closed && s.fault != "notify-not-on-close" {
		close(s.ch)
		s.ch = nil
	}
	return ch
}

type capTx struct {
	escrow.Tx
	fault string
	write bool
}

func (t capTx) ClaimEscrow(id string) (bool, error) {
	if !t.write && t.fault != "claim-in-view" {
		return false, escrow.ErrReadOnly
	}
	if _, err := t.Escrow(id); err != nil {
		if t.fault == "claim-missing" {
			return true, nil
		}
		return false, err
	}
	return true, nil
}

func (t capTx) AddBalance(account string, c escrow.Currency, available, held int64) error {
	if !t.write {
		if t.fault == "add-in-view" {
			return nil // as if it had added
		}
		return escrow.ErrReadOnly
	}
	if account != escrow.WorldAccount && account != escrow.FeeAccount && t.fault != "add-to-user" {
		return escrow.ErrInvalidArgument
	}
	b, err := t.Balance(account, c.Code)
	if errors.Is(err, escrow.ErrNotFound) {
		b, err = escrow.Balance{Account: account, Currency: c, Available: escrow.RestoreMoney(0, c), Held: escrow.RestoreMoney(0, c)}, nil
	}
	if err != nil {
		return err
	}
	if t.fault != "add-replaces" {
		available += b.Available.Units()
		held += b.Held.Units()
	}
	b.Available, b.Held = escrow.RestoreMoney(available, c), escrow.RestoreMoney(held, c)
	return t.PutBalance(b)
}

func capHarness(fault string) storagetest.Harness {
	return func(testing.TB) escrow.Storage { return &capStore{Store: memstore.New(), fault: fault} }
}

// TestCapabilitiesHeld runs the suite on a store that has every optional
// capability and keeps their rules: it passes.
func TestCapabilitiesHeld(t *testing.T) {
	storagetest.RunConformanceTests(t, capHarness(""))
}

// envCapFault names the rule the store of TestCapabilitiesBroken breaks,
// in the process it runs itself in.
const envCapFault = "STORAGETEST_CAPABILITY_FAULT"

// TestCapabilitiesBroken runs the suite's Capabilities group, in a
// process of its own, on stores that each break one rule of an optional
// capability: the suite must fail every one, or an adapter that passes it
// is not a correct one.
func TestCapabilitiesBroken(t *testing.T) {
	if fault := os.Getenv(envCapFault); fault != "" {
		storagetest.RunConformanceTests(t, capHarness(fault))
		return
	}
	if testing.Short() {
		t.Skip("runs the suite once for each fault")
	}
	for fault, rule := range map[string]string{
		"claim-missing":       "ClaimEscrow of an escrow that does not exist",
		"claim-in-view":       "ClaimEscrow in a View",
		"add-to-user":         "AddBalance to a user account",
		"add-in-view":         "AddBalance in a View",
		"add-replaces":        "AddBalance",
		"notify-never":        "EventsCommitted",
		"notify-not-on-close": "EventsCommitted",
	} {
		t.Run(fault, func(t *testing.T) {
			t.Parallel()
			// The suite's group of capabilities alone: the rest of it
			// has nothing to say of them, and would take most of the time.
			cmd := exec.Command(os.Args[0], "-test.run=^TestCapabilitiesBroken$/^Capabilities$", "-test.count=1")
			cmd.Env = append(os.Environ(), envCapFault+"="+fault)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a store that breaks the rule of %s:\n%s", rule, out)
			}
			if !strings.Contains(string(out), "--- FAIL: TestCapabilitiesBroken/Capabilities/") ||
				!strings.Contains(string(out), rule) {
				t.Errorf("the suite failed a store that breaks the rule of %s, but not for it:\n%s", rule, out)
			}
		})
	}
}
