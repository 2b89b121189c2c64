// Package testbin builds the rstwatch command once per test process, so
// end-to-end tests drive the real binary as an operator would.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	once sync.Once
	dir  string
	bin  string
	err  error
)

// Rstwatch returns the path of a freshly built rstwatch binary, or of
// $RSTWATCH_TEST_BIN when set: `make test` builds it as the user before the
// tests run as root, so that root never builds into the user's caches.
func Rstwatch(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		if b := os.Getenv("RSTWATCH_TEST_BIN"); b != "" {
			if _, err = os.Stat(b); err != nil {
				err = fmt.Errorf("RSTWATCH_TEST_BIN: %w", err)
			}
			bin = b
			return
		}
		dir, err = os.MkdirTemp("", "rstwatch-test-bin-")
		if err != nil {
			return
		}
		// Tests run the binary as other users too (setpriv).
		if err = os.Chmod(dir, 0o755); err != nil {
			return
		}
		bin = filepath.Join(dir, "rstwatch")
		out, berr := exec.Command(goTool(), "build", "-o", bin, "github.com/rstwatch/rstwatch/cmd/rstwatch").CombinedOutput()
		if berr != nil {
			err = fmt.Errorf("go build ./cmd/rstwatch: %v\n%s", berr, out)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// goTool is the go command that runs the tests (sudo may drop it from PATH).
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// Main runs the tests and removes the binary afterwards; call it from a
// package's TestMain: os.Exit(testbin.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if dir != "" {
		os.RemoveAll(dir)
	}
	return code
}
