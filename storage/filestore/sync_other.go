//go:build !linux

package filestore

import "os"

// datasync flushes f with fsync where there is no fdatasync.
func datasync(f *os.File) error { return f.Sync() }
