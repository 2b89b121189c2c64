// Command mkinitramfs writes an uncompressed newc cpio archive for booting
// a test kernel. It exists so the harness needs neither the cpio tool nor
// root privileges (for /dev/console) on the machine that builds the image.
//
// Usage:
//
//	mkinitramfs -o initramfs.cpio DST=SRC ...
//
// DST is the absolute path inside the image, SRC a file or directory on the
// host; directories are copied recursively. Parent directories and a
// minimal skeleton (/dev/console, /proc, /sys, /tmp, ...) are added
// automatically.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

const (
	modeDir  = 0o040000
	modeFile = 0o100000
	modeChr  = 0o020000
)

type entry struct {
	name  string // path inside the archive, without leading slash
	mode  uint32
	src   string // host file for regular files
	major uint32 // device numbers for character devices
	minor uint32
}

type archive struct {
	entries map[string]entry
}

func (a *archive) addDir(name string) {
	name = strings.Trim(path.Clean("/"+name), "/")
	if name == "" {
		return
	}
	a.addDir(path.Dir(name))
	if _, ok := a.entries[name]; !ok {
		a.entries[name] = entry{name: name, mode: modeDir | 0o755}
	}
}

func (a *archive) add(e entry) {
	e.name = strings.Trim(path.Clean("/"+e.name), "/")
	a.addDir(path.Dir(e.name))
	a.entries[e.name] = e
}

func (a *archive) addTree(dst, src string) error {
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		a.add(entry{name: dst, mode: modeFile | uint32(st.Mode().Perm()), src: src})
		return nil
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		name := path.Join(dst, filepath.ToSlash(rel))
		if d.IsDir() {
			a.addDir(name)
			return nil
		}
		// Follow symlinks so the guest sees plain files; test data rarely
		// depends on link identity.
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s: unsupported file type %v", p, fi.Mode().Type())
		}
		a.add(entry{name: name, mode: modeFile | uint32(fi.Mode().Perm()), src: p})
		return nil
	})
}

func writeHeader(w io.Writer, ino uint32, e entry, size int64) error {
	nlink := uint32(1)
	if e.mode&modeDir != 0 {
		nlink = 2
	}
	// Timestamps are zero so identical inputs give identical images.
	_, err := fmt.Fprintf(w, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		ino, e.mode, 0, 0, nlink, 0, size, 0, 0, e.major, e.minor, len(e.name)+1, 0)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, e.name+"\x00"); err != nil {
		return err
	}
	return pad(w, 110+len(e.name)+1)
}

func pad(w io.Writer, n int) error {
	if r := n % 4; r != 0 {
		_, err := w.Write(make([]byte, 4-r))
		return err
	}
	return nil
}

func (a *archive) write(w io.Writer) error {
	names := make([]string, 0, len(a.entries))
	for n := range a.entries {
		names = append(names, n)
	}
	// Lexical order puts every directory before its contents, which the
	// kernel's unpacker requires.
	sort.Strings(names)
	for i, n := range names {
		e := a.entries[n]
		ino := uint32(i + 1)
		if e.src == "" {
			if err := writeHeader(w, ino, e, 0); err != nil {
				return err
			}
			continue
		}
		f, err := os.Open(e.src)
		if err != nil {
			return err
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return err
		}
		if err := writeHeader(w, ino, e, st.Size()); err != nil {
			f.Close()
			return err
		}
		n, err := io.Copy(w, f)
		f.Close()
		if err != nil {
			return err
		}
		if n != st.Size() {
			return fmt.Errorf("%s changed size while archiving", e.src)
		}
		if err := pad(w, int(n)); err != nil {
			return err
		}
	}
	return writeHeader(w, 0, entry{name: "TRAILER!!!"}, 0)
}

func main() {
	out := flag.String("o", "", "output cpio file")
	flag.Parse()
	if *out == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: mkinitramfs -o FILE DST=SRC ...")
		os.Exit(2)
	}

	a := &archive{entries: map[string]entry{}}
	for _, d := range []string{"dev", "proc", "sys", "tmp", "run", "etc"} {
		a.addDir(d)
	}
	// The kernel opens /dev/console for init before init can mount
	// devtmpfs; without this node the init's output is lost.
	a.add(entry{name: "dev/console", mode: modeChr | 0o600, major: 5, minor: 1})
	for _, spec := range flag.Args() {
		dst, src, ok := strings.Cut(spec, "=")
		if !ok || dst == "" || src == "" {
			fmt.Fprintf(os.Stderr, "mkinitramfs: bad spec %q, want DST=SRC\n", spec)
			os.Exit(2)
		}
		if err := a.addTree(dst, src); err != nil {
			fmt.Fprintf(os.Stderr, "mkinitramfs: %v\n", err)
			os.Exit(1)
		}
	}

	f, err := os.Create(*out)
	if err != nil {
		fmt.Fprintf(os.Stderr, "mkinitramfs: %v\n", err)
		os.Exit(1)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	err = a.write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(*out)
		fmt.Fprintf(os.Stderr, "mkinitramfs: %v\n", err)
		os.Exit(1)
	}
}
