package securefile

import (
	"os"
	"path/filepath"
	"testing"
)

// TestWriteReplaces: Write replaces a file (of any mode) with mode 0600 and
// leaves no temporary file behind, creating a missing parent with 0700.
func TestWriteReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, []byte("new")); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "new" {
		t.Fatalf("content %q, want %q", got, "new")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("%d entries in the directory, want only f", len(entries))
	}
	nested := filepath.Join(dir, "a", "b")
	if err := Write(nested, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Dir(nested)); fi.Mode().Perm() != 0o700 {
		t.Fatalf("parent mode %v, want 0700", fi.Mode().Perm())
	}
}
