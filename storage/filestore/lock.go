package filestore

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gofrs/flock"
)

// A LockedError reports a directory that another store has open. It wraps
// ErrLocked.
type LockedError struct {
	Dir string // the store's directory
	// PID is the process that has the directory open for writing, where
	// the platform lets another process read it from LOCK (not Windows),
	// and 0 where it is not known or the holders are read-only stores.
	PID int
}

func (e *LockedError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("filestore: %s is locked by another store (process %d)", e.Dir, e.PID)
	}
	return fmt.Sprintf("filestore: %s is locked by another store", e.Dir)
}

// Unwrap returns ErrLocked.
func (e *LockedError) Unwrap() error { return ErrLocked }

// errNotDir reports a store's path that names something other than a
// directory.
var errNotDir = errors.New("not a directory")

// dirLock is the locks a store holds on its directory, released together.
type dirLock []*flock.Flock

func (l dirLock) Close() error {
	var err error
	for i := len(l) - 1; i >= 0; i-- {
		if uerr := l[i].Unlock(); err == nil {
			err = uerr
		}
	}
	return err
}

// Lock locks dir, exclusively for a writer or shared for a read-only store.
//
// Where flock(2) locks directories (lockDirectory), the lock that counts is
// on the directory itself: it belongs to the open directory, so a second
// store conflicts even in the same process, and nothing can unlink it from
// under the holder. LOCK is locked as well, which is all there is
// elsewhere (on Windows an open file cannot be removed), and keeps out a
// store of an older release, which locks only LOCK. A writer writes its
// process ID into LOCK for the error another opener gets. A read-only
// store creates no LOCK: if there is none, no writer holds it.
func (osFS) Lock(dir string, shared bool) (io.Closer, error) {
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		// Locked as a directory would be, a file would be locked itself.
		return nil, &fs.PathError{Op: "lock", Path: dir, Err: errNotDir}
	}
	name := filepath.Join(dir, lockName)
	flag := os.O_RDWR | os.O_CREATE
	if shared {
		flag = os.O_RDONLY
	}
	var locks dirLock
	if lockDirectory {
		locks = append(locks, flock.New(dir, flock.SetFlag(os.O_RDONLY)))
	}
	locks = append(locks, flock.New(name, flock.SetFlag(flag), flock.SetPermissions(0o600)))
	for i, l := range locks {
		err := tryLock(l, shared)
		if shared && l.Path() == name && errors.Is(err, fs.ErrNotExist) {
			return locks[:i], nil
		}
		if errors.Is(err, ErrLocked) {
			err = &LockedError{Dir: dir, PID: writerPID(l, name)}
		} else if err != nil {
			err = fmt.Errorf("filestore: lock %s: %w", l.Path(), err)
		}
		if err != nil {
			locks[:i].Close()
			return nil, err
		}
	}
	if !shared {
		// Only a help for whoever is refused: a store works without it.
		_ = os.WriteFile(name, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600)
	}
	return locks, nil
}

// tryLock takes l without waiting, failing with ErrLocked if it is held.
func tryLock(l *flock.Flock, shared bool) error {
	lock := l.TryLock
	if shared {
		lock = l.TryRLock
	}
	ok, err := lock()
	if err == nil && !ok {
		err = ErrLocked
	}
	return err
}

// writerPID returns the process ID in the LOCK file name if a writer holds
// l, which a shared lock on it tells: the readers that hold a store's
// directory leave in LOCK the ID of a writer that may be gone.
func writerPID(l *flock.Flock, name string) int {
	if ok, err := l.TryRLock(); err != nil || ok {
		l.Unlock()
		return 0
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}
