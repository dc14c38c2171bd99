//go:build !linux

package main

// fsWarning says nothing off Linux, where it does not know how to tell.
func fsWarning(dir string) string { return "" }
