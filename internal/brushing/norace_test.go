//go:build !race

package brushing

// raceDetector reports whether the race detector is on.
const raceDetector = false
