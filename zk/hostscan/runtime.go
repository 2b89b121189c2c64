package hostscan

import (
	"bytes"
	"debug/buildinfo"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
)

// Runtime kinds of a local process, told from its executable and what it
// has mapped: never from its environment, which any process may inherit.
const (
	RuntimeJava   = "java"   // a JVM: the executable is java, or libjvm.so is mapped
	RuntimePython = "python" // a CPython interpreter
	RuntimeNode   = "node"   // Node.js
	RuntimeGo     = "go"     // a Go binary (it has Go build information)
	RuntimeNative = "native" // any other executable (C, C++, …)
)

// Runtime is what runs a process.
type Runtime struct {
	Kind string // one of the Runtime* constants
	Exe  string // the executable's path, as /proc/PID/exe names it
	// Source says how Kind was told ("/proc/4321/exe", "libjvm.so mapped").
	Source string
	// GoMain is a Go binary's main module path and GoPackage its main
	// package's path, "" otherwise.
	GoMain, GoPackage string
	// goDeps are a Go binary's module dependencies (path → version).
	goDeps map[string]string
	// Maps are the files the process has mapped (shared objects, jars).
	maps []string
}

// RstwatchCommand is rstwatch's main package: a process whose executable
// says it was built from it is an rstwatch, whatever its file name.
const RstwatchCommand = "github.com/rstwatch/rstwatch/cmd/rstwatch"

// IsRstwatch reports whether the process is an rstwatch binary. The test
// binary of the command package has the same build information; it is
// told apart by the name go test gives it (*.test).
func (r Runtime) IsRstwatch() bool {
	return r.GoPackage == RstwatchCommand && !strings.HasSuffix(strings.TrimSuffix(r.Exe, " (deleted)"), ".test")
}

// Java reports whether the process is a JVM.
func (r Runtime) Java() bool { return r.Kind == RuntimeJava }

// ExeID identifies an executable file (device and inode), so that what is
// learned from one file is reused for every process running it.
type ExeID struct{ Dev, Ino uint64 }

var pythonName = regexp.MustCompile(`^python[0-9.]*[dmu]?$`)

// runtimeOf tells the runtime from the executable and the mapped files.
// exe is the open executable (/proc/PID/exe), read for Go build info.
func runtimeOf(exePath string, exe io.ReaderAt, maps []string) Runtime {
	r := Runtime{Exe: exePath, maps: maps}
	base := filepath.Base(strings.TrimSuffix(exePath, " (deleted)"))
	mapped := func(sub string) bool {
		for _, m := range maps {
			if strings.Contains(filepath.Base(m), sub) {
				return true
			}
		}
		return false
	}
	switch {
	case base == "java":
		r.Kind, r.Source = RuntimeJava, "executable "+exePath
	case mapped("libjvm.so"):
		r.Kind, r.Source = RuntimeJava, "libjvm.so mapped by "+exePath
	case pythonName.MatchString(base):
		r.Kind, r.Source = RuntimePython, "executable "+exePath
	case mapped("libpython"):
		r.Kind, r.Source = RuntimePython, "libpython mapped by "+exePath
	case base == "node" || base == "nodejs":
		r.Kind, r.Source = RuntimeNode, "executable "+exePath
	default:
		r.Kind, r.Source = RuntimeNative, "executable "+exePath
	}
	if exe != nil && r.Kind == RuntimeNative {
		if bi, err := buildinfo.Read(exe); err == nil {
			r.Kind, r.Source = RuntimeGo, "Go build information in "+exePath
			r.GoMain, r.GoPackage = bi.Main.Path, bi.Path
			r.goDeps = map[string]string{}
			for _, d := range bi.Deps {
				v := d.Version
				if d.Replace != nil {
					v = d.Replace.Version
				}
				r.goDeps[d.Path] = v
			}
		}
	}
	return r
}

// ErrNoProcess: the process is gone (or was never there).
var ErrNoProcess = errors.New("no such process")

// openExe opens /proc/PID/exe: the open file stays readable after the
// process exits, and its device and inode identify the executable.
func openExe(p proc) (*os.File, string, ExeID, error) {
	path, err := os.Readlink(p.path("exe"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, "", ExeID{}, fmt.Errorf("pid %d: %w", p.pid, ErrNoProcess)
		}
		return nil, "", ExeID{}, fmt.Errorf("pid %d exe: %w", p.pid, err)
	}
	f, err := os.Open(p.path("exe"))
	if err != nil {
		return nil, path, ExeID{}, fmt.Errorf("pid %d exe: %w", p.pid, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, path, ExeID{}, fmt.Errorf("pid %d exe: %w", p.pid, err)
	}
	id := ExeID{}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id = ExeID{uint64(st.Dev), st.Ino}
	}
	return f, path, id, nil
}

// mappedFiles lists the distinct files in /proc/PID/maps.
func mappedFiles(p proc) []string {
	b, err := readBounded(p.path("maps"))
	if err != nil {
		return nil
	}
	return MappedFiles(b)
}

// MappedFiles returns the distinct file paths in a /proc/PID/maps text.
func MappedFiles(maps []byte) []string {
	var out []string
	seen := map[string]bool{}
	for len(maps) > 0 {
		line := maps
		if i := bytes.IndexByte(maps, '\n'); i >= 0 {
			line, maps = maps[:i], maps[i+1:]
		} else {
			maps = nil
		}
		f := strings.Fields(string(line))
		if len(f) < 6 || !strings.HasPrefix(f[5], "/") {
			continue
		}
		path := strings.Join(f[5:], " ")
		if !seen[path] {
			seen[path] = true
			out = append(out, path)
		}
	}
	return out
}
