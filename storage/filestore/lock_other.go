//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd)

package filestore

// lockDirectory is false where a directory cannot be locked: on Windows,
// where LOCK cannot be removed while it is open, and on systems whose
// locks are fcntl's, which belong to the process rather than to the open
// file, and need it open for writing.
const lockDirectory = false
