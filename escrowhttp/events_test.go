package escrowhttp

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/memstore"
)

// settle is how long a test lets a request reach its wait before it
// commits the event the request waits for. The test passes without it;
// with it, the wake-up is what is tested.
const settle = 50 * time.Millisecond

// bound is how long any wait of these tests may take before it fails.
const bound = 5 * time.Second

func TestEventsPage(t *testing.T) {
	h := newHarness(t, nil, nil)
	must(h.l.OpenAccount(h.ctx, "alice"))
	must(h.l.Deposit(h.ctx, "alice", money("5.00")))
	var page eventPage
	r := h.do(req{method: "GET", path: "/v1/events?after=1&limit=10", actor: "ops", operator: true}).ok(http.StatusOK)
	r.into(&page)
	r.same(eventPage{Events: must(h.l.Events(h.ctx, 1, 10)), Next: page.Next})
	if len(page.Events) != 1 || page.Events[0].Type != escrow.Deposited || page.Next != page.Events[0].Seq {
		t.Errorf("page after 1: %+v", page)
	}
	h.do(req{method: "GET", path: "/v1/events?after=" + strconv.FormatUint(page.Next, 10), actor: "ops", operator: true}).
		ok(http.StatusOK).same(eventPage{Events: []escrow.Event{}, Next: page.Next})

	// A HEAD of the stream answers its headers and ends; the context
	// bounds it, should it wait.
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	r = h.do(req{method: "HEAD", path: "/v1/events/stream", actor: "ops", operator: true, ctx: ctx}).ok(http.StatusOK)
	if ctx.Err() != nil || r.header.Get("Content-Type") != "text/event-stream" {
		t.Errorf("HEAD of the stream: %v, %v", ctx.Err(), r.header)
	}
	// So does a HEAD of a long poll, whose answer has no body to wait for.
	began := time.Now()
	r = h.do(req{method: "HEAD", path: "/v1/events?wait=1h&after=" + strconv.FormatUint(page.Next, 10), actor: "ops", operator: true, ctx: ctx})
	if r.ok(http.StatusOK); time.Since(began) > bound/2 || r.header.Get("Content-Type") != "application/json" {
		t.Errorf("HEAD of a long poll took %s: %v", time.Since(began), r.header)
	}
}

// TestLongPoll: a long poll answers as soon as an event commits, and with
// no events when its wait is over.
func TestLongPoll(t *testing.T) {
	h := newHarness(t, &Options{MaxWait: time.Minute}, nil)
	must(h.l.OpenAccount(h.ctx, "alice"))
	last := must(h.l.Events(h.ctx, 0, 100))
	after := last[len(last)-1].Seq

	done := make(chan *resp, 1)
	began := time.Now()
	go func() {
		done <- h.do(req{method: "GET", path: "/v1/events?wait=50s&after=" + strconv.FormatUint(after, 10), actor: "ops", operator: true})
	}()
	time.Sleep(settle)
	must(h.l.Deposit(h.ctx, "alice", money("5.00")))
	select {
	case r := <-done:
		var page eventPage
		r.ok(http.StatusOK).into(&page)
		if len(page.Events) != 1 || page.Events[0].Type != escrow.Deposited || page.Next != after+1 {
			t.Errorf("long poll answered %+v", page)
		}
		if took := time.Since(began); took > bound {
			t.Errorf("the long poll took %s", took)
		}
	case <-time.After(bound):
		t.Fatal("the long poll did not answer when an event committed")
	}

	// With nothing to come, the wait is capped by MaxWait.
	short := newHarness(t, &Options{MaxWait: 20 * time.Millisecond}, nil)
	done2 := make(chan *resp, 1)
	go func() {
		done2 <- short.do(req{method: "GET", path: "/v1/events?after=0&wait=1h", actor: "ops", operator: true})
	}()
	select {
	case r := <-done2:
		r.ok(http.StatusOK).same(eventPage{Events: []escrow.Event{}, Next: 0})
	case <-time.After(bound):
		t.Fatal("the long poll outwaited MaxWait")
	}
}

// TestStream: server-sent events carry each event with its seq as id,
// and a reconnecting client's Last-Event-ID resumes after it.
func TestStream(t *testing.T) {
	h := newHarness(t, &Options{MaxWait: 20 * time.Millisecond}, nil)
	ts := httptest.NewServer(h.srv)
	defer ts.Close()
	must(h.l.OpenAccount(h.ctx, "alice"))
	events := must(h.l.Events(h.ctx, 0, 100))
	base := events[len(events)-1].Seq // alice's opening

	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	s := openStream(t, ctx, ts.URL+"/v1/events/stream?after="+strconv.FormatUint(base, 10), "")
	time.Sleep(settle)
	must(h.l.Deposit(h.ctx, "alice", money("5.00")))
	must(h.l.Withdraw(h.ctx, "alice", money("1.00")))
	got := s.next(t, 2)
	if got[0].id != base+1 || got[1].id != base+2 || got[0].event.Type != escrow.Deposited || got[1].event.Type != escrow.Withdrawn {
		t.Fatalf("stream sent ids %d, %d: %s, %s", got[0].id, got[1].id, got[0].data, got[1].data)
	}
	want := must(h.l.Events(h.ctx, base, 2))
	for i := range got {
		sameJSON(t, got[i].data, want[i])
	}
	s.close()

	// Reconnect after the deposit: the withdrawal comes first, though
	// after says to start from the beginning.
	s = openStream(t, ctx, ts.URL+"/v1/events/stream?after=0", strconv.FormatUint(base+1, 10))
	if got := s.next(t, 1); got[0].id != base+2 {
		t.Fatalf("resumed with id %d", got[0].id)
	}
	s.close()
}

// A stream is a client's side of GET /v1/events/stream.
type stream struct {
	resp *http.Response
	r    *bufio.Reader
	idle int // comments read
}

// A message is one server-sent event.
type message struct {
	id    uint64
	data  []byte
	event escrow.Event
}

func openStream(t *testing.T, ctx context.Context, url, lastID string) *stream {
	t.Helper()
	hr, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	hr.Header.Set("X-Actor", "ops")
	hr.Header.Set("X-Operator", "yes")
	if lastID != "" {
		hr.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return &stream{resp: resp, r: bufio.NewReader(resp.Body)}
}

// next reads n messages, skipping comments. The request's context bounds
// it: if the messages do not come, the read fails.
func (s *stream) next(t *testing.T, n int) []message {
	t.Helper()
	var out []message
	var m message
	for len(out) < n {
		line, err := s.r.ReadString('\n')
		if err != nil {
			t.Fatalf("after %d messages: %v", len(out), err)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if m.data != nil {
				if err := json.Unmarshal(m.data, &m.event); err != nil {
					t.Fatal(err)
				}
				out = append(out, m)
			}
			m = message{}
		case strings.HasPrefix(line, ":"):
			s.idle++
		case strings.HasPrefix(line, "id: "):
			m.id, err = strconv.ParseUint(strings.TrimPrefix(line, "id: "), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
		case strings.HasPrefix(line, "data: "):
			m.data = []byte(strings.TrimPrefix(line, "data: "))
		default:
			t.Fatalf("unexpected line %q", line)
		}
	}
	return out
}

func (s *stream) close() { s.resp.Body.Close() }

// TestStreamError: a ledger failure once the stream has begun is sent as
// an error event, and ends the stream.
func TestStreamError(t *testing.T) {
	h := newHarness(t, &Options{MaxWait: 10 * time.Millisecond}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	done := make(chan *resp, 1)
	go func() {
		done <- h.do(req{method: "GET", path: "/v1/events/stream?after=0", actor: "ops", operator: true, ctx: ctx})
	}()
	time.Sleep(settle)
	h.store.fail(escrow.ErrClosed)
	select {
	case r := <-done:
		if !strings.Contains(string(r.body), "event: error\ndata: {\"error\":{\"code\":\"closed\"") {
			t.Errorf("stream ended with %q", r.body)
		}
		if !strings.HasPrefix(string(r.body), ": idle\n\n") {
			t.Errorf("an idle stream sent no comment first: %q", r.body)
		}
	case <-ctx.Done():
		t.Fatal("the stream did not end when the store closed")
	}
}

// TestLongPollErrors: a long poll that the ledger refuses answers with
// the refusal, not with an empty page: a cursor past the newest event is
// 400, and a store that closed while the poll waited is 503.
func TestLongPollErrors(t *testing.T) {
	h := newHarness(t, &Options{MaxWait: time.Minute}, nil)
	must(h.l.OpenAccount(h.ctx, "alice"))
	last := must(h.l.Events(h.ctx, 0, 100))
	newest := last[len(last)-1].Seq
	r := h.do(req{method: "GET", path: "/v1/events?wait=10s&after=" + strconv.FormatUint(newest+1, 10), actor: "ops", operator: true})
	if r.ok(http.StatusBadRequest); !strings.Contains(string(r.body), `"code":"invalid_argument"`) {
		t.Errorf("a long poll past the newest event: %s, want invalid_argument", r.body)
	}
	done := make(chan *resp, 1)
	go func() {
		done <- h.do(req{method: "GET", path: "/v1/events?wait=50s&after=" + strconv.FormatUint(newest, 10), actor: "ops", operator: true})
	}()
	time.Sleep(settle)
	h.mem.Close()
	select {
	case r := <-done:
		r.ok(http.StatusServiceUnavailable)
	case <-time.After(bound):
		t.Fatal("the long poll did not answer when the store closed")
	}
}

// TestLongPollPastNewestShortWait: a long poll whose wait is over before
// the ledger has looked at its place, as a wait of a nanosecond is, still
// refuses a place past the newest event with 400, as a read without a wait
// does, rather than answer an empty page that leaves the client waiting
// there and skipping the events numbered up to it; at the newest event
// it answers an empty page.
func TestLongPollPastNewestShortWait(t *testing.T) {
	h := newHarness(t, nil, nil)
	must(h.l.OpenAccount(h.ctx, "alice"))
	last := must(h.l.Events(h.ctx, 0, 100))
	newest := last[len(last)-1].Seq
	for _, wait := range []string{"1ns", "1us"} {
		r := h.do(req{method: "GET", path: "/v1/events?wait=" + wait + "&after=" + strconv.FormatUint(newest+1, 10), actor: "ops", operator: true})
		if r.status != http.StatusBadRequest || r.refusal().Code != "invalid_argument" {
			t.Errorf("wait=%s past the newest event: %d %s, want 400 invalid_argument", wait, r.status, r.body)
		}
		h.do(req{method: "GET", path: "/v1/events?wait=" + wait + "&after=" + strconv.FormatUint(newest, 10), actor: "ops", operator: true}).
			ok(http.StatusOK).same(eventPage{Events: []escrow.Event{}, Next: newest})
	}
}

// TestStreamPastNewest: a stream asked to start after an event not yet
// committed, by after or by Last-Event-ID (a client that kept its place
// while the store was restored from an older backup), is refused with
// 400 before it begins, rather than skip the events numbered up to it:
// an EventSource does not reconnect on a 400.
func TestStreamPastNewest(t *testing.T) {
	h := newHarness(t, nil, nil)
	must(h.l.OpenAccount(h.ctx, "alice"))
	last := must(h.l.Events(h.ctx, 0, 100))
	past := strconv.FormatUint(last[len(last)-1].Seq+1, 10)
	for _, r := range []req{
		{method: "GET", path: "/v1/events/stream?after=" + past, actor: "ops", operator: true},
		{method: "GET", path: "/v1/events/stream", actor: "ops", operator: true, header: map[string]string{"Last-Event-ID": past}},
	} {
		resp := h.do(r).ok(http.StatusBadRequest)
		if !strings.Contains(string(resp.body), `"code":"invalid_argument"`) {
			t.Errorf("%s %v: %s, want invalid_argument", r.path, r.header, resp.body)
		}
	}
}

// TestWaitOutlastsWriteTimeout: a long poll and a stream that wait longer
// than the server's WriteTimeout still answer.
func TestWaitOutlastsWriteTimeout(t *testing.T) {
	h := newHarness(t, &Options{MaxWait: time.Second}, nil)
	ts := httptest.NewUnstartedServer(h.srv)
	ts.Config.WriteTimeout = 50 * time.Millisecond
	ts.Start()
	defer ts.Close()
	must(h.l.OpenAccount(h.ctx, "alice"))
	events := must(h.l.Events(h.ctx, 0, 100))
	base := strconv.FormatUint(events[len(events)-1].Seq, 10)
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()

	s := openStream(t, ctx, ts.URL+"/v1/events/stream?after="+base, "")
	hr := must(http.NewRequestWithContext(ctx, "GET", ts.URL+"/v1/events?wait=10s&after="+base, nil))
	hr.Header.Set("X-Actor", "ops")
	hr.Header.Set("X-Operator", "yes")
	polled := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(hr)
		if err == nil {
			defer resp.Body.Close()
			var page eventPage
			err = json.NewDecoder(resp.Body).Decode(&page)
			if err == nil && (resp.StatusCode != http.StatusOK || len(page.Events) != 1) {
				err = fmt.Errorf("status %d, page %+v", resp.StatusCode, page)
			}
		}
		polled <- err
	}()
	time.Sleep(3 * ts.Config.WriteTimeout)
	must(h.l.Deposit(h.ctx, "alice", money("1.00")))
	if err := <-polled; err != nil {
		t.Errorf("the long poll: %v", err)
	}
	if got := s.next(t, 1); strconv.FormatUint(got[0].id-1, 10) != base {
		t.Errorf("the stream sent id %d after %s", got[0].id, base)
	}
	s.close()
}

// TestLongPollWakesOnAnotherLedger: a long poll wakes at once on an event
// committed through another Ledger on the same store, when the store is
// an escrow.EventNotifier (memstore is, for the Ledgers of one process),
// not after escrow.Options.EventPoll, set here far past the test's bound.
func TestLongPollWakesOnAnotherLedger(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	defer store.Close()
	served, err := escrow.New(ctx, store, &escrow.Options{EventPoll: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	other, err := escrow.New(ctx, store, &escrow.Options{EventPoll: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	api, err := New(served, &Options{Actor: headerActor, Operator: headerOperator, MaxWait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	must(other.OpenAccount(ctx, "alice"))
	done := make(chan *httptest.ResponseRecorder, 1)
	go func() {
		r := httptest.NewRequest("GET", "/v1/events?wait=50s&after=1", nil)
		r.Header.Set("X-Actor", "ops")
		r.Header.Set("X-Operator", "yes")
		w := httptest.NewRecorder()
		api.ServeHTTP(w, r)
		done <- w
	}()
	time.Sleep(settle)
	must(other.Deposit(ctx, "alice", money("5.00")))
	select {
	case w := <-done:
		var page eventPage
		if err := json.Unmarshal(w.Body.Bytes(), &page); err != nil || w.Code != http.StatusOK {
			t.Fatalf("long poll answered %d %s", w.Code, w.Body)
		}
		if len(page.Events) != 1 || page.Events[0].Type != escrow.Deposited {
			t.Errorf("long poll answered %+v", page)
		}
	case <-time.After(bound):
		t.Fatal("the long poll did not wake on a commit through another Ledger")
	}
}

// TestEventsLimit: GET /v1/events takes a limit of 1 to 1,000, the most
// events one read of the ledger returns, and refuses 0 or 1,001 with 400
// invalid_argument rather than answer fewer events than it asked for.
func TestEventsLimit(t *testing.T) {
	h := newHarness(t, nil, nil)
	must(h.l.OpenAccount(h.ctx, "alice"))
	for _, n := range []int{1, eventLimit} {
		r := h.do(req{method: "GET", path: "/v1/events?limit=" + strconv.Itoa(n), actor: "ops", operator: true}).ok(http.StatusOK)
		r.same(eventPage{Events: must(h.l.Events(h.ctx, 0, n)), Next: 1})
	}
	for _, n := range []int{0, eventLimit + 1} {
		r := h.do(req{method: "GET", path: "/v1/events?limit=" + strconv.Itoa(n), actor: "ops", operator: true}).ok(http.StatusBadRequest)
		if e := r.refusal(); e.Code != "invalid_argument" || !strings.Contains(e.Message, "1 to 1000") {
			t.Errorf("limit=%d: %+v", n, e)
		}
	}
}
