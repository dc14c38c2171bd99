//go:build !linux

package main

// fsWarning says nothing off Linux, where it does not know how to tell.
func fsWarning(dir string) string { return "" }

// syncAll writes every file system's dirty data to disk, where this
// program knows how; elsewhere it does nothing.
func syncAll() {}
