package browser

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// startShop builds the shop command from the escrow module, runs it on a
// free port with its books in a temporary directory, and returns the
// address it prints.
func startShop(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "shop")
	build := exec.Command("go", "build", "-o", bin, "./examples/shop")
	build.Dir = filepath.Join("..", "..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the shop: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-data", t.TempDir())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("the shop printed no address: %v", err)
	}
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "shop: open ")
	if !ok {
		t.Fatalf("the shop printed %q, want its address", line)
	}
	return url
}

// chromium returns the browser to drive: $CHROMIUM, or chromium on the
// PATH. Without one the test fails: it is the only test of the page in a
// real browser, and CI installs one.
func chromium(t *testing.T) string {
	t.Helper()
	if path := os.Getenv("CHROMIUM"); path != "" {
		return path
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	t.Fatal("no Chromium to drive: install it (Debian: apt-get install chromium) or set CHROMIUM")
	return ""
}

// TestTradeInBrowser clicks through one trade on the shop's page as the
// buyer and the seller would, checking what the page shows after each
// click, and saves a screenshot of the end.
func TestTradeInBrowser(t *testing.T) {
	url := startShop(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox, // CI runs as root, where Chromium's sandbox will not start
		chromedp.WindowSize(1000, 1400),
	)
	alloc, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	browser, cancel := chromedp.NewContext(alloc)
	defer cancel()
	if err := chromedp.Do(browser); err != nil { // starts the browser, with no timeout
		t.Fatalf("starting Chromium: %v", err)
	}
	ctx, cancel := context.WithTimeout(browser, 90*time.Second)
	defer cancel()

	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("reading %s: %v", sel, err)
		}
		return s
	}
	// leave clicks sel, which leads to another page, and waits for that
	// page to show wait. The page it leaves is marked first, so that the
	// wait cannot be met by the old page while the new one loads.
	leave := func(sel, wait string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.dataset.left = "yes"`)); err != nil {
			t.Fatalf("marking the page: %v", err)
		}
		do("clicking "+sel, chromedp.Click(sel), chromedp.WaitVisible("body:not([data-left]) "+wait))
	}
	// press clicks the button with this id and checks the state of the
	// order on the page the form leads to.
	press := func(id, wantState string) {
		t.Helper()
		leave("#"+id, "#order-1-state")
		if got := text("#order-1-state"); got != wantState {
			t.Errorf("after %s the page shows %q, want %q", id, got, wantState)
		}
	}

	do("opening the page as the buyer", chromedp.Navigate(url+"?as=mei"),
		chromedp.SetValue(`input[name="price"]`, "88.00"))
	press("order", "AwaitingPayment")
	press("order-1-pay", "AwaitingShipment")
	leave("#as-teahouse", "#order-1-ship")
	press("order-1-ship", "AwaitingConfirmation")
	leave("#as-mei", "#order-1-confirm")
	press("order-1-confirm", "Completed")
	press("order-1-rate", "Completed")

	if got := text("#reputation"); !strings.HasPrefix(got, "1 points") {
		t.Errorf("the seller's reputation reads %q, want 1 point", got)
	}
	timeline := text("#order-1-timeline")
	for _, ev := range []string{"EscrowOpened", "EscrowPaid", "EscrowShipped", "EscrowReleased", "RatingGiven"} {
		if !strings.Contains(timeline, ev) {
			t.Errorf("the timeline lacks %s:\n%s", ev, timeline)
		}
	}
	if !strings.Contains(timeline, "RatingGiven by mei") {
		t.Errorf("the timeline does not show the buyer's rating:\n%s", timeline)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(90))
	if err != nil {
		t.Fatalf("taking a screenshot: %v", err)
	}
	if len(shot) < 1000 {
		t.Errorf("the screenshot is %d bytes", len(shot))
	}
	dir := os.Getenv("SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	path := filepath.Join(dir, "shop-trade.jpg")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}
