//go:build !race

package storagetest

// raceDetector reports whether the race detector is on.
const raceDetector = false
