// Package testenv decides, for tests, whether what a test needs is here:
// root to load BPF, a program installed by a package. Without it the test
// skips, unless CI set the matching RSTWATCH_REQUIRE_* variable, which turns
// the skip into a failure so that a green CI cannot hide a skipped test.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// RequireBPF skips t unless this process may load BPF programs (root),
// or fails it when RSTWATCH_REQUIRE_BPF=1.
func RequireBPF(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("RSTWATCH_REQUIRE_BPF") == "1" {
		t.Fatal("this test loads BPF programs and needs root; RSTWATCH_REQUIRE_BPF=1 forbids skipping it")
	}
	t.Skip("this test loads BPF programs and needs root (RSTWATCH_REQUIRE_BPF=1 fails instead)")
}

// RequireProgram returns the path of program (a name looked up in PATH, or
// an absolute path), skipping t when it is missing, or failing it when the
// environment variable require is "1". pkg names the Debian package that
// provides it, for the message.
func RequireProgram(t testing.TB, program, pkg, require string) string {
	t.Helper()
	path, err := exec.LookPath(program)
	if err == nil {
		return path
	}
	if os.Getenv(require) == "1" {
		t.Fatalf("%s is missing (apt-get install %s); %s=1 forbids skipping", program, pkg, require)
	}
	t.Skipf("%s is missing (apt-get install %s; %s=1 fails instead)", program, pkg, require)
	return ""
}

// RequireRoot skips t unless this process runs as root (to make cgroups
// and move processes into them), or fails it when RSTWATCH_REQUIRE_BPF=1:
// CI runs as root, and a test that needs root must not skip there.
func RequireRoot(t testing.TB, what string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("RSTWATCH_REQUIRE_BPF") == "1" {
		t.Fatalf("this test %s and needs root; RSTWATCH_REQUIRE_BPF=1 forbids skipping it", what)
	}
	t.Skipf("this test %s and needs root (RSTWATCH_REQUIRE_BPF=1 fails instead)", what)
}
