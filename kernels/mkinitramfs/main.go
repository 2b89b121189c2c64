// Command mkinitramfs writes an uncompressed newc cpio archive for booting
// a test kernel. It exists so the harness needs neither the cpio tool nor
// root privileges (for /dev/console) on the machine that builds the image.
//
// Usage:
//
//	mkinitramfs -o initramfs.cpio [-moddir DIR -modules a,b] DST=SRC ...
//
// DST is the absolute path inside the image, SRC a file or directory on the
// host; directories are copied recursively. Parent directories and a
// minimal skeleton (/dev/console, /proc, /sys, /tmp, ...) are added
// automatically.
//
// -moddir names an unpacked /lib/modules/<release> directory; the listed
// modules and their dependencies (from modules.dep) are copied to the same
// place in the image, and /etc/ktest.modules lists them in load order for
// kernels/init. Modules built into the kernel are skipped.
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
	data  []byte // contents of regular files made here, when src is ""
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
			if err := writeHeader(w, ino, e, int64(len(e.data))); err != nil {
				return err
			}
			if _, err := w.Write(e.data); err != nil {
				return err
			}
			if err := pad(w, len(e.data)); err != nil {
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
	moddir := flag.String("moddir", "", "unpacked /lib/modules/<release> of the guest kernel")
	modules := flag.String("modules", "", "comma-separated kernel modules to include, with dependencies")
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

	if *modules != "" {
		if *moddir == "" {
			fmt.Fprintln(os.Stderr, "mkinitramfs: -modules needs -moddir")
			os.Exit(2)
		}
		if err := a.addModules(*moddir, strings.Split(*modules, ",")); err != nil {
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

// addModules copies the named modules and what they depend on, and writes
// their guest paths in load order (dependencies first) to /etc/ktest.modules.
func (a *archive) addModules(moddir string, names []string) error {
	order, err := moduleClosure(moddir, names)
	if err != nil {
		return err
	}
	release := filepath.Base(filepath.Clean(moddir))
	var list strings.Builder
	for _, rel := range order {
		dst := path.Join("/lib/modules", release, rel)
		if err := a.addTree(dst, filepath.Join(moddir, rel)); err != nil {
			return err
		}
		list.WriteString(dst + "\n")
	}
	a.add(entry{name: "etc/ktest.modules", mode: modeFile | 0o644, data: []byte(list.String())})
	return nil
}

// moduleName gives the name modprobe would use for a module file:
// "kernel/drivers/net/veth.ko.xz" -> "veth", with '-' folded to '_'.
func moduleName(file string) string {
	base := path.Base(file)
	if i := strings.Index(base, ".ko"); i >= 0 {
		base = base[:i]
	}
	return strings.ReplaceAll(base, "-", "_")
}

// moduleClosure returns module files relative to moddir, dependencies
// before their users, as modprobe would load them.
func moduleClosure(moddir string, names []string) ([]string, error) {
	depFile, err := os.ReadFile(filepath.Join(moddir, "modules.dep"))
	if err != nil {
		return nil, err
	}
	files := map[string]string{}  // name -> file
	deps := map[string][]string{} // name -> names it needs
	for _, line := range strings.Split(string(depFile), "\n") {
		file, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		name := moduleName(file)
		files[name] = file
		for _, d := range strings.Fields(rest) {
			deps[name] = append(deps[name], moduleName(d))
		}
	}
	builtin := map[string]bool{}
	if b, err := os.ReadFile(filepath.Join(moddir, "modules.builtin")); err == nil {
		for _, line := range strings.Fields(string(b)) {
			builtin[moduleName(line)] = true
		}
	}

	var order []string
	done := map[string]bool{}
	var visit func(name string) error
	visit = func(name string) error {
		if done[name] || builtin[name] {
			return nil
		}
		done[name] = true
		file, ok := files[name]
		if !ok {
			return fmt.Errorf("module %s: not in %s/modules.dep nor built in", name, moddir)
		}
		for _, d := range deps[name] {
			if err := visit(d); err != nil {
				return err
			}
		}
		order = append(order, file)
		return nil
	}
	for _, n := range names {
		if n = strings.TrimSpace(n); n == "" {
			continue
		}
		if err := visit(strings.ReplaceAll(n, "-", "_")); err != nil {
			return nil, err
		}
	}
	return order, nil
}
