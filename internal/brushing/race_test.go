//go:build race

package brushing

// raceDetector reports whether the race detector is on. Each run of the
// market is one goroutine, and the detector makes it many times slower
// (the short run takes over a minute under it), so under it only the
// small runs of TestDeterministic check that runs side by side share
// nothing.
const raceDetector = true
