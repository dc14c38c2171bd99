//go:build !race

package escrow_test

// raceDetector reports whether the race detector is on.
const raceDetector = false
