//go:build race

package filestore

// raceEnabled shrinks the long loops under the race detector, which slows
// them tenfold.
const raceEnabled = true
