package escrow_test

import (
	"os"
	"path/filepath"
	"regexp"
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

// TestREADMEErrorsNamesEverySentinel: the README's Errors section names
// every sentinel error the package exports and every error type that
// callers may find with errors.As, so that a caller switching on them
// learns of each from the README.
func TestREADMEErrorsNamesEverySentinel(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Errors\n")
	section, _, ok2 := strings.Cut(section, "\n## ")
	if !ok || !ok2 {
		t.Fatal("README.md has no Errors section")
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	sentinel := regexp.MustCompile(`(?m)^\t(Err[A-Z]\w*) += errors\.New\(`)
	errorType := regexp.MustCompile(`(?m)^func \(e \*([A-Z]\w*)\) Error\(\) string`)
	names := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range sentinel.FindAllStringSubmatch(string(src), -1) {
			names++
			if !strings.Contains(section, "`"+m[1]+"`") {
				t.Errorf("the README's Errors section does not name %s (%s)", m[1], f)
			}
		}
		for _, m := range errorType.FindAllStringSubmatch(string(src), -1) {
			names++
			if !strings.Contains(section, "`*"+m[1]+"`") {
				t.Errorf("the README's Errors section does not name *%s (%s)", m[1], f)
			}
		}
	}
	if names < 20 {
		t.Fatalf("found only %d sentinels and error types: the patterns no longer match the source", names)
	}
}
