package shop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/escrowkit/escrow"
	"github.com/escrowkit/escrow/storage/memstore"
)

// client drives the shop over HTTP as a browser with forms would.
type client struct {
	t      *testing.T
	srv    *httptest.Server
	ledger *escrow.Ledger
	clock  *escrow.ManualClock
}

func newClient(t *testing.T) *client {
	t.Helper()
	store := memstore.New()
	t.Cleanup(func() { store.Close() })
	clock := escrow.NewManualClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	s, err := newShop(context.Background(), store, clock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return &client{t: t, srv: srv, ledger: s.ledger, clock: clock}
}

// page returns the page as who sees it.
func (c *client) page(who string) string {
	c.t.Helper()
	resp, err := http.Get(c.srv.URL + "/?as=" + who)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("GET / as %s: %s\n%s", who, resp.Status, b)
	}
	return string(b)
}

// post submits a form as who and returns the page it leads to.
func (c *client) post(path, who string, form url.Values) string {
	c.t.Helper()
	form.Set("as", who)
	resp, err := http.PostForm(c.srv.URL+path, form)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("POST %s as %s: %s\n%s", path, who, resp.Status, b)
	}
	return string(b)
}

// act presses the button for action on escrow id as who, which the page
// must show, and returns the page after.
func (c *client) act(who, id, action string, fields ...string) string {
	c.t.Helper()
	if !strings.Contains(c.page(who), `id="`+id+`-`+action+`"`) {
		c.t.Fatalf("%s sees no %s button on %s", who, action, id)
	}
	form := url.Values{"id": {id}, "action": {action}}
	for i := 0; i+1 < len(fields); i += 2 {
		form.Set(fields[i], fields[i+1])
	}
	page := c.post("/act", who, form)
	if p := problem(page); p != "" {
		c.t.Fatalf("%s %s on %s was refused: %s", who, action, id, p)
	}
	return page
}

var problemRE = regexp.MustCompile(`<p class="problem" id="problem">([^<]*)</p>`)

func problem(page string) string {
	if m := problemRE.FindStringSubmatch(page); m != nil {
		return m[1]
	}
	return ""
}

// state returns the state the page shows for escrow id.
func state(t *testing.T, page, id string) string {
	t.Helper()
	m := regexp.MustCompile(`id="` + regexp.QuoteMeta(id) + `-state">([A-Za-z]+)<`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("the page shows no state for %s", id)
	}
	return m[1]
}

// TestTrade acts out a trade through the page: order, pay, ship, confirm,
// and both ratings. The page shows each state, only the buttons the
// person may press, the timeline, the balances and the seller's
// reputation, as the ledger has them.
func TestTrade(t *testing.T) {
	c := newClient(t)
	page := c.post("/order", buyer, url.Values{"item": {"Yixing teapot"}, "price": {"120.00"}})
	if got := state(t, page, "order-1"); got != "AwaitingPayment" {
		t.Fatalf("a new order is %s", got)
	}
	if strings.Contains(c.page(seller), `id="order-1-pay"`) {
		t.Errorf("the seller is offered to pay")
	}
	page = c.act(buyer, "order-1", "pay")
	if got := state(t, page, "order-1"); got != "AwaitingShipment" {
		t.Errorf("after paying the order is %s", got)
	}
	if !strings.Contains(page, "<td>CNY</td><td>380.00 CNY</td><td>120.00 CNY</td>") {
		t.Errorf("the buyer's balances do not show 380.00 available and 120.00 held:\n%s", page)
	}
	c.act(seller, "order-1", "ship", "tracking", "SF42")
	page = c.act(buyer, "order-1", "confirm")
	if got := state(t, page, "order-1"); got != "Completed" {
		t.Errorf("after confirming the order is %s", got)
	}
	c.act(buyer, "order-1", "rate", "score", "positive", "stars", "5")
	page = c.act(seller, "order-1", "rate", "score", "positive")

	h, err := c.ledger.History(context.Background(), "order-1")
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	for _, ev := range h {
		want.WriteString(string(ev.Type))
		want.WriteByte(' ')
	}
	timeline := regexp.MustCompile(`(?s)<ol class="timeline" id="order-1-timeline">(.*?)</ol>`).FindStringSubmatch(page)
	if timeline == nil {
		t.Fatal("no timeline for order-1")
	}
	var got bytes.Buffer
	for _, m := range regexp.MustCompile(`\d\d:\d\d:\d\d (\w+)`).FindAllStringSubmatch(timeline[1], -1) {
		got.WriteString(m[1])
		got.WriteByte(' ')
	}
	if got.String() != want.String() || !strings.HasPrefix(got.String(), "EscrowOpened EscrowPaid EscrowShipped EscrowReleased RatingGiven RatingGiven") {
		t.Errorf("timeline %q, want the escrow's history %q", got.String(), want.String())
	}
	if !strings.Contains(page, `<p id="reputation">1 points`) {
		t.Errorf("the seller's reputation does not show 1 point:\n%s", page)
	}
	if strings.Contains(page, `id="order-1-rate"`) {
		t.Errorf("the seller is offered to rate again")
	}
	sellerPage := c.page(seller)
	if !strings.Contains(sellerPage, "<td>CNY</td><td>120.00 CNY</td><td>0.00 CNY</td>") {
		t.Errorf("the seller's balance does not show the 120.00 released:\n%s", sellerPage)
	}
}

// TestAPI: the shop serves the ledger's JSON API beside its page, acting
// as the X-Actor header says, and refuses a request that names nobody.
func TestAPI(t *testing.T) {
	c := newClient(t)
	c.post("/order", buyer, url.Values{"item": {"Yixing teapot"}, "price": {"120.00"}})
	c.act(buyer, "order-1", "pay")
	get := func(who, path string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", c.srv.URL+path, nil)
		if who != "" {
			req.Header.Set("X-Actor", who)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	status, body := get(seller, "/v1/escrows/order-1")
	var got escrow.Escrow
	if err := json.Unmarshal(body, &got); status != http.StatusOK || err != nil {
		t.Fatalf("GET /v1/escrows/order-1 as the seller: %d %s (%v)", status, body, err)
	}
	want, _ := c.ledger.Escrow(context.Background(), "order-1")
	if got.ID != want.ID || got.State != escrow.AwaitingShipment || got.Version != want.Version || !got.Held.Equal(want.Held) {
		t.Errorf("the API's escrow %+v, want the ledger's %+v", got, want)
	}
	if status, body := get("", "/v1/escrows/order-1"); status != http.StatusUnauthorized {
		t.Errorf("GET with no actor: %d %s, want 401", status, body)
	}
}

// TestRefundAndDispute: the buyer asks for money back, the seller
// refuses, the buyer calls the arbiter, who splits the money; and an
// action the rules refuse shows why and changes nothing.
func TestRefundAndDispute(t *testing.T) {
	c := newClient(t)
	c.post("/order", buyer, url.Values{"item": {"Teacups"}, "price": {"120.00"}})
	c.act(buyer, "order-1", "pay")
	c.act(seller, "order-1", "ship")
	c.act(buyer, "order-1", "request_refund", "amount", "120.00", "reason", "cracked")
	c.act(seller, "order-1", "refuse_refund", "reason", "packed with care")
	c.act(buyer, "order-1", "dispute", "reason", "see the photos")
	page := c.act(arbiter, "order-1", "resolve", "amount", "50.00")
	if got := state(t, page, "order-1"); got != "Resolved" {
		t.Errorf("after the arbiter's split the order is %s", got)
	}
	for who, balance := range map[string]string{buyer: "430.00 CNY", seller: "70.00 CNY"} {
		b, err := c.ledger.Balance(context.Background(), who, escrow.CNY)
		if err != nil || b.Available.String() != balance {
			t.Errorf("%s holds %v (%v), want %s available", who, b.Available, err, balance)
		}
	}

	// The seller posts a confirm the page never offered.
	c.post("/order", buyer, url.Values{"item": {"Tea"}, "price": {"10.00"}})
	before, _ := c.ledger.Escrow(context.Background(), "order-2")
	page = c.post("/act", seller, url.Values{"id": {"order-2"}, "action": {"confirm"}})
	if p := problem(page); !strings.Contains(p, "may not") {
		t.Errorf("a refused action shows %q, want why", p)
	}
	after, _ := c.ledger.Escrow(context.Background(), "order-2")
	if after.Version != before.Version || after.State != escrow.AwaitingPayment {
		t.Errorf("a refused action changed the escrow: %+v", after)
	}
	page = c.post("/order", buyer, url.Values{"item": {"Tea"}, "price": {"-1"}})
	if problem(page) == "" {
		t.Errorf("an order at a negative price was not refused")
	}
}

// TestReturnAndRefund: the buyer puts the deadline back, then sends the
// goods back through the page; the seller agrees, gives an address and
// confirms their receipt, and the money comes back.
func TestReturnAndRefund(t *testing.T) {
	c := newClient(t)
	c.post("/order", buyer, url.Values{"item": {"Yixing teapot"}, "price": {"120.00"}})
	c.act(buyer, "order-1", "pay")
	page := c.act(seller, "order-1", "ship", "tracking", "SF42")
	if got := due(t, page, "order-1"); got != "Mar 11 09:00" {
		t.Errorf("shipped, the deadline is %s, want Mar 11 09:00", got)
	}
	page = c.act(buyer, "order-1", "extend")
	if got := due(t, page, "order-1"); got != "Mar 14 09:00" {
		t.Errorf("extended, the deadline is %s, want three days later, Mar 14 09:00", got)
	}
	if strings.Contains(page, `id="order-1-extend"`) {
		t.Errorf("the buyer is offered a second extension")
	}
	c.act(buyer, "order-1", "request_return", "amount", "120.00", "reason", "chipped spout")
	page = c.act(seller, "order-1", "agree_return", "address", "8 Longjing Road")
	if got := state(t, page, "order-1"); got != "AwaitingReturn" || !strings.Contains(page, "Send the goods back to 8 Longjing Road") {
		t.Errorf("after agreeing the order is %s; the page shows the address: %v", got, strings.Contains(page, "8 Longjing Road"))
	}
	c.act(buyer, "order-1", "ship_return", "tracking", "SF43")
	page = c.act(seller, "order-1", "confirm_return")
	if got := state(t, page, "order-1"); got != "Refunded" {
		t.Errorf("after the seller confirmed the return the order is %s", got)
	}
	if b, err := c.ledger.Balance(context.Background(), buyer, escrow.CNY); err != nil || b.Available.String() != "500.00 CNY" {
		t.Errorf("the buyer holds %v (%v), want all 500.00 back", b.Available, err)
	}
}

// TestCart: the buyer pays several orders in one payment, and a cart with
// an order already paid is refused whole, naming it, and pays nothing.
func TestCart(t *testing.T) {
	c := newClient(t)
	for _, item := range []string{"Teapot", "Cups", "Tea"} {
		c.post("/order", buyer, url.Values{"item": {item}, "price": {"100.00"}})
	}
	c.act(buyer, "order-3", "pay")
	page := c.page(buyer)
	for _, id := range []string{"order-1", "order-2"} {
		if !strings.Contains(page, `<input type="checkbox" name="id" value="`+id+`" checked>`) {
			t.Errorf("the cart does not offer %s", id)
		}
	}
	if strings.Contains(page, `value="order-3" checked`) {
		t.Errorf("the cart offers order-3, which is paid")
	}
	page = c.post("/cart", buyer, url.Values{"id": {"order-1", "order-3"}})
	if p := problem(page); !strings.Contains(p, "order-3") || state(t, page, "order-1") != "AwaitingPayment" {
		t.Errorf("a cart with a paid order: problem %q, order-1 %s", p, state(t, page, "order-1"))
	}
	page = c.post("/cart", buyer, url.Values{"id": {"order-1", "order-2"}})
	if p := problem(page); p != "" {
		t.Fatalf("the cart was refused: %s", p)
	}
	for _, id := range []string{"order-1", "order-2"} {
		if got := state(t, page, id); got != "AwaitingShipment" {
			t.Errorf("paid in the cart, %s is %s", id, got)
		}
	}
	if !strings.Contains(page, "<td>CNY</td><td>200.00 CNY</td><td>300.00 CNY</td>") {
		t.Errorf("the buyer's balances do not show 200.00 available and 300.00 held:\n%s", page)
	}
	if strings.Contains(page, `id="cart-form"`) {
		t.Errorf("the cart is offered with nothing left to pay")
	}
}

// due returns the next deadline the page shows for escrow id.
func due(t *testing.T, page, id string) string {
	t.Helper()
	m := regexp.MustCompile(`id="` + regexp.QuoteMeta(id) + `-due">([^<]+)<`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("the page shows no deadline for %s", id)
	}
	return m[1]
}

// TestRun: the command prints the address it serves, and -h is not an
// error.
func TestRun(t *testing.T) {
	if err := Run(context.Background(), io.Discard, []string{"-h"}, Options{}); err == nil || !strings.Contains(err.Error(), "help") {
		t.Errorf("run -h = %v, want flag.ErrHelp", err)
	}
}

// TestRunRefusesStrayArguments: an argument that is not a flag (an
// address given without -addr, say) is refused before the shop opens a
// store or serves, as the marketplace refuses one, instead of being
// ignored while the shop serves on the default address.
func TestRunRefusesStrayArguments(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "books")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var out bytes.Buffer
	err := Run(ctx, &out, []string{"-addr", "localhost:0", "-data", dir, "localhost:9090"}, Options{})
	if err == nil || !strings.Contains(err.Error(), `unexpected arguments ["localhost:9090"]`) {
		t.Errorf("run with a stray argument = %v, want an unexpected arguments error; it printed %q", err, out.String())
	}
	if _, statErr := os.Stat(dir); !errors.Is(statErr, fs.ErrNotExist) {
		t.Errorf("run with a stray argument made the store's directory (%v)", statErr)
	}
}

// TestReopenedShopNumbersOn: a shop reopened on its books numbers new
// orders after the highest it has, so an order refused before the
// restart (which used up a number) does not make the next order's ID one
// that is taken: opened again with the same terms, that order would be
// the old one, and the buyer's new order would never appear.
func TestReopenedShopNumbersOn(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	t.Cleanup(func() { store.Close() })
	clock := escrow.NewManualClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	open := func() *client {
		s, err := newShop(ctx, store, clock)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(s)
		t.Cleanup(srv.Close)
		return &client{t: t, srv: srv, ledger: s.ledger, clock: clock}
	}
	teapot := url.Values{"item": {"Yixing teapot"}, "price": {"120.00"}}
	c := open()
	if p := problem(c.post("/order", buyer, url.Values{"item": {"Yixing teapot"}, "price": {"0"}})); p == "" {
		t.Fatal("an order at no price was taken")
	}
	c.post("/order", buyer, teapot)
	c.act(buyer, "order-2", "pay")

	c = open()
	page := c.post("/order", buyer, teapot)
	if p := problem(page); p != "" {
		t.Fatalf("the order after the restart was refused: %s", p)
	}
	mine, err := c.ledger.Escrows(ctx, escrow.EscrowQuery{Party: buyer})
	if err != nil {
		t.Fatal(err)
	}
	if len(mine.Escrows) != 2 || mine.Escrows[0].State != escrow.AwaitingPayment {
		t.Fatalf("after a second order the buyer has %d orders, the newest %s %s; want 2, the newest awaiting payment",
			len(mine.Escrows), mine.Escrows[0].ID, mine.Escrows[0].State)
	}
	if got := state(t, page, mine.Escrows[0].ID); got != "AwaitingPayment" {
		t.Errorf("the page shows the new order %s as %s", mine.Escrows[0].ID, got)
	}
}

// TestEnvironmentYieldsToData: ESCROW_PG_DSN is the default of -pg, not
// a flag given. With it set, an explicit -data DIR still keeps the books
// in DIR and the database is not touched; -h does not print the variable
// (a DSN may hold a password). With no -data, the variable chooses the
// database, as before.
func TestEnvironmentYieldsToData(t *testing.T) {
	const dsn = "postgres://me:s3cret@db.example/shop"
	t.Setenv("ESCROW_PG_DSN", dsn)
	var opened []string
	errOpened := errors.New("the database was opened")
	o := Options{OpenPG: func(ctx context.Context, dsn string) (escrow.Storage, error) {
		opened = append(opened, dsn)
		return nil, errOpened
	}}

	dir := filepath.Join(t.TempDir(), "books")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, w := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, w, []string{"-addr", "127.0.0.1:0", "-data", dir}, o)
		w.Close()
	}()
	line := make([]byte, 200)
	n, _ := r.Read(line)
	go io.Copy(io.Discard, r)
	if !strings.HasPrefix(string(line[:n]), "shop: open http://") {
		t.Errorf("-data DIR with ESCROW_PG_DSN set printed %q", line[:n])
	} else if _, err := os.Stat(filepath.Join(dir, "LOCK")); err != nil {
		t.Errorf("-data DIR with ESCROW_PG_DSN set serves no store in DIR: %v", err)
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, errOpened) {
		t.Errorf("the shop ended with %v", err)
	}
	if len(opened) != 0 {
		t.Errorf("with -data given, the database in ESCROW_PG_DSN was opened %d times", len(opened))
	}

	var out bytes.Buffer
	if err := Run(context.Background(), &out, []string{"-h"}, o); err == nil || strings.Contains(out.String(), "s3cret") ||
		!strings.Contains(out.String(), "ESCROW_PG_DSN") {
		t.Errorf("-h = %v, printed\n%s\nwant the usage, naming ESCROW_PG_DSN and not its value", err, out.String())
	}
	if err := Run(context.Background(), io.Discard, []string{"-addr", "127.0.0.1:0"}, o); !errors.Is(err, errOpened) || len(opened) != 1 || opened[0] != dsn {
		t.Errorf("no -data with ESCROW_PG_DSN set: %v, opened %q; want the database in the variable", err, opened)
	}
}

// TestEmptyPG: -pg given an empty DSN (-pg "$DSN" with DSN unset) names
// no database. It is refused before anything is opened or served, rather
// than serve the shop from a temporary file store.
func TestEmptyPG(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	opened := false
	o := Options{OpenPG: func(ctx context.Context, dsn string) (escrow.Storage, error) {
		opened = true
		return nil, errors.New("the database was opened")
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, args := range [][]string{{"-addr", "127.0.0.1:0", "-pg", ""}, {"-addr", "127.0.0.1:0", "-pg="}} {
		var out bytes.Buffer
		err := Run(ctx, &out, args, o)
		if err == nil || err.Error() != "-pg needs a connection string" || out.Len() != 0 {
			t.Errorf("run(%q) = %v, printed %q; want \"-pg needs a connection string\" and nothing", args, err, out.String())
		}
	}
	if opened {
		t.Error("an empty -pg opened a database")
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Errorf("an empty -pg made %d entries in the temporary directory", len(entries))
	}
}
