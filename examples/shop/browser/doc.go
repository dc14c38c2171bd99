// Package browser holds the test that acts out a trade on the shop's page
// in a real browser: headless Chromium, driven over the DevTools protocol
// by chromedp. It is a module of its own, so that the escrow module never
// requires a browser driver. Run it with
//
//	cd examples/shop/browser && go test ./...
//
// with Chromium installed (Debian: apt-get install chromium); CHROMIUM
// names the binary if it is not chromium on the PATH, and SCREENSHOT_DIR,
// if set, keeps the screenshot the test takes.
package browser
