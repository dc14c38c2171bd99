package filestore

import (
	"io"
	"os"

	"github.com/escrowkit/escrow/storage/filestore/internal/sstable"
)

// fileSystem is everything the store does to its directory. The store uses
// osFS; crash tests substitute a file system that can fail or tear any
// write or fsync and forget what was not synced.
type fileSystem interface {
	MkdirAll(dir string) error
	// Lock locks dir, shared or exclusively, without waiting; it fails
	// with an error wrapping ErrLocked if another store holds a lock that
	// conflicts.
	Lock(dir string, shared bool) (io.Closer, error)
	// ReadDir returns the names of the files in dir.
	ReadDir(dir string) ([]string, error)
	ReadFile(name string) ([]byte, error)
	// Create creates a new empty file for writing; it fails if name exists.
	Create(name string) (file, error)
	// OpenAppend opens an existing file for appending.
	OpenAppend(name string) (file, error)
	// OpenRead opens an existing file for reading at any offset, and
	// returns its size.
	OpenRead(name string) (sstable.File, int64, error)
	Rename(oldname, newname string) error
	Remove(name string) error
	// SyncDir makes the names in dir durable.
	SyncDir(dir string) error
}

// file is an open file of a fileSystem.
type file interface {
	Write(p []byte) (int, error)
	// Sync makes the file's contents durable (fdatasync).
	Sync() error
	Truncate(size int64) error
	Close() error
}

// osFS is the operating system's file system. Files are created 0600 and
// directories 0700: a store holds money records.
type osFS struct{}

func (osFS) MkdirAll(dir string) error { return os.MkdirAll(dir, 0o700) }

func (osFS) ReadDir(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names, err
}

func (osFS) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }

func (osFS) Create(name string) (file, error) {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) OpenAppend(name string) (file, error) {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) OpenRead(name string) (sstable.File, int64, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

func (osFS) Rename(oldname, newname string) error { return os.Rename(oldname, newname) }
func (osFS) Remove(name string) error             { return os.Remove(name) }

func (osFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// osFile is an *os.File whose Sync is fdatasync where there is one: the
// log only grows by appends, and the size it reaches is in the data sync.
type osFile struct{ f *os.File }

func (o osFile) Write(p []byte) (int, error) { return o.f.Write(p) }
func (o osFile) Sync() error                 { return datasync(o.f) }
func (o osFile) Truncate(size int64) error   { return o.f.Truncate(size) }
func (o osFile) Close() error                { return o.f.Close() }
