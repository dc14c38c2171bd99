//go:build race

package escrow_test

// raceDetector reports whether the race detector is on. The random runs are
// one goroutine each, so the detector has nothing to find in them, while it
// makes every step many times slower; under it the runs are shortened.
const raceDetector = true
