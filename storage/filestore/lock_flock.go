//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package filestore

// lockDirectory says that the store's lock is taken on its directory:
// flock(2) locks an open directory like any other file.
const lockDirectory = true
