package escrowhttp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/memstore"
	"github.com/escrowkit/escrow/storage/storagetest"
	"github.com/google/go-cmp/cmp"
	"github.com/shopspring/decimal"
)

// start is the manual clock's first reading.
var start = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// The test host authenticates by two headers: X-Actor names the actor,
// and X-Operator: yes makes it an operator.
func headerActor(r *http.Request) (string, error) {
	if v, ok := r.Header["X-Actor"]; ok {
		return strings.TrimSpace(v[0]), nil
	}
	return "", errors.New("no credentials")
}

func headerOperator(r *http.Request) bool { return r.Header.Get("X-Operator") == "yes" }

// A harness is the API over a ledger on a fresh memstore, behind a store
// that can be made to fail, with a manual clock.
type harness struct {
	t      *testing.T
	ctx    context.Context
	mem    *memstore.Store
	store  *faultStore
	clock  *escrow.ManualClock
	l      *escrow.Ledger
	srv    *server
	logged *bytes.Buffer // what the handler logged

	mu  sync.Mutex
	hit map[string]bool // the patterns requests reached
}

// newHarness returns a harness with opts (nil: the header actor and
// operator) and ledger options lopts (the clock is set here).
func newHarness(t *testing.T, opts *Options, lopts *escrow.Options) *harness {
	t.Helper()
	h := &harness{t: t, ctx: context.Background(), mem: memstore.New(), clock: escrow.NewManualClock(start),
		logged: &bytes.Buffer{}, hit: map[string]bool{}}
	t.Cleanup(func() { h.mem.Close() })
	h.store = &faultStore{Storage: h.mem}
	if lopts == nil {
		lopts = &escrow.Options{Fee: escrow.FeePolicy{Rate: decimal.RequireFromString("0.006")}}
	}
	lopts.Clock = h.clock
	l, err := escrow.New(h.ctx, h.store, lopts)
	if err != nil {
		t.Fatal(err)
	}
	h.l = l
	if opts == nil {
		opts = &Options{}
	}
	if opts.Actor == nil {
		opts.Actor = headerActor
	}
	if opts.Operator == nil {
		opts.Operator = headerOperator
	}
	if opts.Logger == nil {
		opts.Logger = slogTo(&lockedWriter{w: h.logged})
	}
	if opts.Terms == nil {
		// The tests' host lets the buyer write the whole terms, arbiter
		// and timers included; TestTermsAreTheHosts tests the default.
		opts.Terms = func(*http.Request, *escrow.Terms) error { return nil }
	}
	handler, err := New(l, opts)
	if err != nil {
		t.Fatal(err)
	}
	h.srv = handler.(*server)
	return h
}

// A faultStore is a store whose transactions fail with fault, when set,
// without running.
type faultStore struct {
	escrow.Storage
	fault atomic.Pointer[error]
}

func (f *faultStore) fail(err error) {
	if err == nil {
		f.fault.Store(nil)
		return
	}
	f.fault.Store(&err)
}

func (f *faultStore) Update(ctx context.Context, fn func(escrow.Tx) error) error {
	if err := f.fault.Load(); err != nil {
		return *err
	}
	return f.Storage.Update(ctx, fn)
}

func (f *faultStore) View(ctx context.Context, fn func(escrow.Tx) error) error {
	if err := f.fault.Load(); err != nil {
		return *err
	}
	return f.Storage.View(ctx, fn)
}

// A req is one request a test makes.
type req struct {
	method, path string
	actor        string // X-Actor; "" for none
	operator     bool
	// body is sent as it is if a string, else as its JSON; nil sends none.
	body   any
	header map[string]string // more headers; a "" value removes one
	ctx    context.Context
	// chunked sends the body without a Content-Length.
	chunked bool
}

// A resp is the answer.
type resp struct {
	t      *testing.T
	status int
	header http.Header
	body   []byte
}

// do serves r and returns the answer.
func (h *harness) do(r req) *resp {
	h.t.Helper()
	hr := h.request(r)
	if _, pattern := h.srv.mux.Handler(hr); pattern != "" {
		h.mu.Lock()
		h.hit[pattern] = true
		h.mu.Unlock()
	}
	w := httptest.NewRecorder()
	h.srv.ServeHTTP(w, hr)
	return &resp{t: h.t, status: w.Code, header: w.Header(), body: w.Body.Bytes()}
}

// request builds the http.Request of r.
func (h *harness) request(r req) *http.Request {
	h.t.Helper()
	var body io.Reader
	switch b := r.body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		body = bytes.NewReader(j)
	}
	hr := httptest.NewRequest(r.method, r.path, body)
	if r.ctx != nil {
		hr = hr.WithContext(r.ctx)
	}
	if r.chunked {
		hr.ContentLength = -1
	}
	if r.method == http.MethodPost {
		hr.Header.Set("Content-Type", "application/json")
	}
	if r.actor != "" {
		hr.Header.Set("X-Actor", r.actor)
	}
	if r.operator {
		hr.Header.Set("X-Operator", "yes")
	}
	for k, v := range r.header {
		if v == "" {
			hr.Header.Del(k)
		} else {
			hr.Header.Set(k, v)
		}
	}
	return hr
}

// ok fails the test unless the answer has status want, and returns it.
func (r *resp) ok(want int) *resp {
	r.t.Helper()
	if r.status != want {
		r.t.Fatalf("status %d, want %d: %s", r.status, want, r.body)
	}
	return r
}

// into decodes the answer's JSON into v.
func (r *resp) into(v any) {
	r.t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		r.t.Fatalf("decoding %s: %v", r.body, err)
	}
}

// refusal decodes the answer as a refusal.
func (r *resp) refusal() errorObject {
	r.t.Helper()
	var b errorBody
	r.into(&b)
	return b.Error
}

// same fails the test unless the answer's JSON is want's.
func (r *resp) same(want any) {
	r.t.Helper()
	sameJSON(r.t, r.body, want)
}

// sameJSON fails t unless got, JSON, says what want encodes to.
func sameJSON(t *testing.T, got []byte, want any) {
	t.Helper()
	w, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var g, wv any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("decoding %s: %v", got, err)
	}
	if err := json.Unmarshal(w, &wv); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(wv, g); d != "" {
		t.Errorf("answer differs from the ledger's (-ledger +http):\n%s", d)
	}
}

// dump returns the whole store's content.
func (h *harness) dump() []byte {
	h.t.Helper()
	b, err := storagetest.Dump(h.ctx, h.mem)
	if err != nil {
		h.t.Fatal(err)
	}
	return b
}

// must returns v, or panics on err: in a test, a panic fails it with the
// line of the ledger call that failed.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// cny is an amount in CNY, as the API writes it.
func cny(amount string) map[string]string {
	return map[string]string{"amount": amount, "currency": "CNY"}
}

// money is the same as a Money.
func money(amount string) escrow.Money { return escrow.MustParseMoney(amount, escrow.CNY) }

// slogTo returns a logger writing text to w.
func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// A lockedWriter lets the handler log from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
