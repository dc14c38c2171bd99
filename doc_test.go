package escrow_test

import (
	"os"
	"strings"
	"testing"
)

// TestDocNamesEveryAdapter: the package overview's Storage section names
// every storage adapter in the repository, so that a reader of the
// package documentation learns of each, the PostgreSQL one included.
func TestDocNamesEveryAdapter(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(src), "// # Storage\n")
	section, _, ok2 := strings.Cut(section, "\n// # ")
	if !ok || !ok2 {
		t.Fatal("doc.go has no Storage section")
	}
	dirs, err := os.ReadDir("storage")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if !d.IsDir() || d.Name() == "storagetest" {
			continue
		}
		if name := "storage/" + d.Name(); !strings.Contains(section, name) {
			t.Errorf("doc.go's Storage section does not name %s", name)
		}
	}
}
