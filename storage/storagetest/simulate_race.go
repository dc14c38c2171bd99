//go:build race

package storagetest

// raceDetector reports whether the race detector is on. The random run is
// one goroutine, so the detector has nothing to find in it, while it makes
// every step many times slower; under it the run is shortened.
const raceDetector = true
