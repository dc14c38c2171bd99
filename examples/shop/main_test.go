package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain runs the program itself, rather than the tests, when
// SHOP_TEST_RUN_MAIN is set, so that a test can start it as a process and
// signal it.
func TestMain(m *testing.M) {
	if os.Getenv("SHOP_TEST_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestStopRemovesTemporaryStore: the books of a run without -data are
// removed at exit, whether the shop is stopped with an interrupt (Ctrl-C)
// or terminated as a service manager or kill stops it.
func TestStopRemovesTemporaryStore(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no signals to send to a process on Windows")
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			tmp := t.TempDir()
			cmd := exec.Command(os.Args[0], "-addr", "localhost:0")
			cmd.Env = append(os.Environ(), "SHOP_TEST_RUN_MAIN=1", "TMPDIR="+tmp)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				line, err := bufio.NewReader(stdout).ReadString('\n')
				if err == nil && !strings.HasPrefix(line, "shop: open http://") {
					err = fmt.Errorf("first line %q", line)
				}
				done <- err
			}()
			select {
			case err := <-done:
				if err != nil {
					cmd.Process.Kill()
					cmd.Wait()
					t.Fatalf("the shop did not print its address: %v", err)
				}
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatal("the shop did not start in 30s")
			}
			if entries, _ := os.ReadDir(tmp); len(entries) != 1 {
				t.Fatalf("the shop made %d entries in the temporary directory, want its store's", len(entries))
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Wait(); err != nil {
				t.Errorf("the shop stopped by %v: %v, want a clean exit", sig, err)
			}
			entries, err := os.ReadDir(tmp)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				t.Errorf("the shop stopped by %v left %s in the temporary directory", sig, e.Name())
			}
		})
	}
}
