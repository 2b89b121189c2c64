package output

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRotatingFileKeepsLinesWholeAndOneBackup(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	f, err := OpenRotating(path, 100)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Repeat("x", 29) + "\n" // 30 bytes
	for range 3 {
		// Three lines per write, like a buffered writer's chunk.
		if _, err := f.Write([]byte(line + line + line)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	cur, _ := os.ReadFile(path)
	old, _ := os.ReadFile(path + ".1")
	if len(cur) > 100 || len(old) > 100 {
		t.Errorf("sizes %d and %d, want at most 100", len(cur), len(old))
	}
	// Each 90-byte write leaves no room for the next: rotate, keep one.
	if len(cur) != 90 || len(old) != 90 {
		t.Errorf("sizes %d and %d, want 90 and 90", len(cur), len(old))
	}
	for _, b := range [][]byte{cur, old} {
		for _, l := range strings.SplitAfter(string(b), "\n") {
			if l != "" && l != line {
				t.Errorf("broken line %q", l)
			}
		}
	}
}
