package zktest

import (
	"archive/zip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// FakeProc builds a /proc-like tree under t.TempDir(): each process gets
// cmdline, environ, stat, a root symlink to a shared fake filesystem, cwd,
// fd links and maps.
type FakeProc struct {
	t    testing.TB
	Root string // the fake /proc
	FS   string // the fake filesystem the processes see as /
}

func NewFakeProc(t testing.TB) *FakeProc {
	d := t.TempDir()
	fp := &FakeProc{t: t, Root: filepath.Join(d, "proc"), FS: filepath.Join(d, "fs")}
	os.MkdirAll(fp.Root, 0o755)
	os.MkdirAll(fp.FS, 0o755)
	return fp
}

// File writes a file of the fake filesystem.
func (fp *FakeProc) File(path, content string) {
	full := filepath.Join(fp.FS, path)
	os.MkdirAll(filepath.Dir(full), 0o755)
	if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
		fp.t.Fatal(err)
	}
}

// Jar writes a jar at path with the given entries.
func (fp *FakeProc) Jar(path string, entries map[string]string) {
	full := filepath.Join(fp.FS, path)
	os.MkdirAll(filepath.Dir(full), 0o755)
	f, err := os.Create(full)
	if err != nil {
		fp.t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for name, body := range entries {
		w, _ := zw.Create(name)
		w.Write([]byte(body))
	}
	zw.Close()
	f.Close()
}

// ProcSpec is one fake process.
type ProcSpec struct {
	PID     string
	Args    []string
	Env     []string
	Cwd     string
	Start   string
	FDs     []string // paths held open (jars)
	MapsJar []string
	Exe     string   // the executable; default from Args[0]
	Maps    []string // other mapped files
}

// Proc makes a fake process: cmdline, environ, stat, root, cwd, exe, fd
// links and maps.
func (fp *FakeProc) Proc(s ProcSpec) {
	d := filepath.Join(fp.Root, s.PID)
	os.MkdirAll(filepath.Join(d, "fd"), 0o755)
	os.WriteFile(filepath.Join(d, "cmdline"), []byte(strings.Join(s.Args, "\x00")+"\x00"), 0o644)
	os.WriteFile(filepath.Join(d, "environ"), []byte(strings.Join(s.Env, "\x00")), 0o644)
	start := s.Start
	if start == "" {
		start = "4242"
	}
	stat := s.PID + " (java (x)) S 1 1 1 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 30 0 " + start + " 100 10 18446744073709551615\n"
	os.WriteFile(filepath.Join(d, "stat"), []byte(stat), 0o644)
	os.Symlink(fp.FS, filepath.Join(d, "root"))
	cwd := s.Cwd
	if cwd == "" {
		cwd = "/"
	}
	os.MkdirAll(filepath.Join(fp.FS, cwd), 0o755)
	os.Symlink(filepath.Join(fp.FS, cwd), filepath.Join(d, "cwd"))
	for i, j := range s.FDs {
		os.Symlink(j, filepath.Join(d, "fd", strconv.Itoa(10+i)))
	}
	exe := s.Exe
	if exe == "" && len(s.Args) > 0 {
		exe = "/usr/bin/" + filepath.Base(s.Args[0])
		if filepath.Base(s.Args[0]) == "java" {
			exe = "/usr/lib/jvm/bin/java"
		}
	}
	if exe != "" {
		if _, err := os.Stat(filepath.Join(fp.FS, exe)); err != nil {
			fp.File(exe, "not an ELF file")
		}
		os.Symlink(filepath.Join(fp.FS, exe), filepath.Join(d, "exe"))
	}
	var maps strings.Builder
	for _, j := range s.MapsJar {
		maps.WriteString("7f00a0000000-7f00a0001000 r--s 00000000 08:01 1234 " + j + "\n")
	}
	for _, m := range s.Maps {
		maps.WriteString("7f00c0000000-7f00c0001000 r-xp 00000000 08:01 77 " + m + "\n")
	}
	if filepath.Base(exe) == "java" {
		maps.WriteString("7f00b0000000-7f00b0001000 r-xp 00000000 08:01 99 /usr/lib/jvm/lib/libjvm.so\n")
	}
	os.WriteFile(filepath.Join(d, "maps"), []byte(maps.String()), 0o644)
}
