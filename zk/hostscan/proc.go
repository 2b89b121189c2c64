package hostscan

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// DefaultProcRoot is where the real /proc is; tests pass a fake tree.
const DefaultProcRoot = "/proc"

// maxProcFile bounds reads of /proc files and configs: they are small, and
// a fake or hostile tree must not make rstwatch read gigabytes.
const maxProcFile = 1 << 20

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, maxProcFile)); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ParseNulList splits /proc/PID/cmdline or environ (NUL-separated).
func ParseNulList(b []byte) []string {
	b = bytes.TrimRight(b, "\x00")
	if len(b) == 0 {
		return nil
	}
	parts := bytes.Split(b, []byte{0})
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = string(p)
	}
	return out
}

// proc is one process seen through a (possibly fake) /proc root.
type proc struct {
	root string // the /proc root
	pid  int
}

func (p proc) path(elem ...string) string {
	return filepath.Join(append([]string{p.root, strconv.Itoa(p.pid)}, elem...)...)
}

func (p proc) cmdline() ([]string, error) {
	b, err := readBounded(p.path("cmdline"))
	if err != nil {
		return nil, fmt.Errorf("pid %d cmdline: %w", p.pid, err)
	}
	return ParseNulList(b), nil
}

func (p proc) environ() []string {
	b, err := readBounded(p.path("environ"))
	if err != nil {
		return nil
	}
	return ParseNulList(b)
}

// file maps a path as the process sees it (its mount namespace and working
// directory) to one rstwatch can open: through /proc/PID/root and
// /proc/PID/cwd, so that containers work too.
func (p proc) file(path string) string {
	if filepath.IsAbs(path) {
		return p.path("root", path)
	}
	return p.path("cwd", path)
}

// startTime is field 22 of /proc/PID/stat, to tell a reused pid apart.
func (p proc) startTime() (uint64, error) {
	b, err := readBounded(p.path("stat"))
	if err != nil {
		return 0, fmt.Errorf("pid %d stat: %w", p.pid, err)
	}
	return ParseStatStartTime(b)
}

// ParseStatStartTime extracts starttime from /proc/PID/stat. comm may hold
// spaces and parentheses, so fields are counted after the last ')'.
func ParseStatStartTime(b []byte) (uint64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat: no ')'")
	}
	f := strings.Fields(string(b[i+1:]))
	// After comm: state is field 3, starttime field 22 → index 19 here.
	if len(f) < 20 {
		return 0, fmt.Errorf("stat: %d fields after comm, want 20+", len(f))
	}
	v, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stat: starttime %q: %w", clip(f[19]), err)
	}
	return v, nil
}

// pids lists the numeric entries of the /proc root.
func pids(root string) ([]int, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", root, err)
	}
	var out []int
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out, nil
}

// clip keeps error messages short when a file holds garbage.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
