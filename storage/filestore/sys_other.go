//go:build !unix

package filestore

import (
	"errors"
	"os"
)

var errWouldBlock = errors.New("would block")

// lockFile does nothing where there is no flock: the directory is not
// protected against a second store on such systems.
func lockFile(f *os.File) error { return nil }
