package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"
)

// Every usage error is one sentence that names the flag and what it wants,
// found before anything is loaded, discovered or probed, and exits 2.

// usageError is a sentence about the command line.
func usageError(format string, args ...any) error {
	return &exitError{2, fmt.Errorf(format, args...)}
}

// value is a pflag.Value whose parser says in plain words what it wants.
type value[T any] struct {
	p     *T
	parse func(string) (T, error)
	show  func(T) string
	typ   string
}

func (v *value[T]) Set(s string) error {
	x, err := v.parse(s)
	if err != nil {
		return err
	}
	*v.p = x
	return nil
}
func (v *value[T]) String() string { return v.show(*v.p) }
func (v *value[T]) Type() string   { return v.typ }

// worded marks values whose parse errors are already plain words.
func (v *value[T]) worded() {}

func uintString[T uint32 | uint64 | int](n T) string { return strconv.FormatUint(uint64(n), 10) }

// numberFlag registers a whole-number flag taking min..max.
func numberFlag[T uint32 | uint64 | int](fs *pflag.FlagSet, p *T, name string, def, min, max T, want, usage string) {
	*p = def
	fs.Var(&value[T]{p: p, typ: "N", show: uintString[T], parse: func(s string) (T, error) {
		n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
		if err != nil || n < uint64(min) || n > uint64(max) {
			return 0, errors.New(want)
		}
		return T(n), nil
	}}, name, usage)
}

// durationFlag registers a duration flag of at least min (0: any
// non-negative duration).
func durationFlag(fs *pflag.FlagSet, p *time.Duration, name string, def, min time.Duration, want, usage string) {
	*p = def
	fs.Var(&value[time.Duration]{p: p, typ: "duration", show: showDuration,
		parse: func(s string) (time.Duration, error) {
			d, err := time.ParseDuration(strings.TrimSpace(s))
			if err != nil || d < 0 || d < min && d != 0 || min > 0 && d == 0 {
				return 0, errors.New(want)
			}
			return d, nil
		}}, name, usage)
}

// showDuration shows 0 as nothing, so that help prints no "(default 0s)".
func showDuration(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// sizeFlag registers a size in bytes (4096, 256K, 8M, 1G).
func sizeFlag(fs *pflag.FlagSet, p *int, name, def string, check func(int) error, usage string) {
	n, err := parseSize(def)
	if err != nil {
		panic(err)
	}
	*p = n
	fs.Var(&value[int]{p: p, typ: "size", show: formatSize, parse: func(s string) (int, error) {
		n, err := parseSize(s)
		if err == nil && check != nil {
			err = check(n)
		}
		return n, err
	}}, name, usage)
}

// choiceFlag registers a flag that takes one of a few words.
func choiceFlag(fs *pflag.FlagSet, p *string, name, short, def string, choices []string, usage string) {
	*p = def
	v := &value[string]{p: p, typ: "format", show: func(s string) string { return s }, parse: func(s string) (string, error) {
		for _, c := range choices {
			if s == c {
				return s, nil
			}
		}
		return "", fmt.Errorf("want %s", orList(choices))
	}}
	fs.VarP(v, name, short, usage)
}

func orList(words []string) string {
	if len(words) == 1 {
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// parseSize reads 4096, 256K, 8M, 1G (binary multiples; a trailing B or iB
// is allowed).
func parseSize(s string) (int, error) {
	bad := fmt.Errorf("want a size in bytes, or a number with K, M or G (such as 256K or 8M)")
	mult := uint64(1)
	t := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(s)), "B"), "I")
	switch {
	case strings.HasSuffix(t, "K"):
		mult, t = 1<<10, strings.TrimSuffix(t, "K")
	case strings.HasSuffix(t, "M"):
		mult, t = 1<<20, strings.TrimSuffix(t, "M")
	case strings.HasSuffix(t, "G"):
		mult, t = 1<<30, strings.TrimSuffix(t, "G")
	}
	n, err := strconv.ParseUint(t, 10, 64)
	if err != nil || n == 0 {
		return 0, bad
	}
	if n > 1<<40/mult {
		return 0, fmt.Errorf("%s is more than a terabyte", s)
	}
	return int(n * mult), nil
}

func formatSize(n int) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return strconv.Itoa(n>>30) + "G"
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.Itoa(n>>20) + "M"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.Itoa(n>>10) + "K"
	}
	return strconv.Itoa(n)
}

// ringBufferSize is what the kernel takes for a BPF ring buffer: a power of
// two from one page up to 2G (its size is a 32-bit map attribute).
func ringBufferSize(n int) error {
	page := os.Getpagesize()
	if n < page || n > 1<<31 || n&(n-1) != 0 {
		return fmt.Errorf("want a power of two from %s to 2G (such as 256K, 8M or 64M)", formatSize(page))
	}
	return nil
}

// parsePID reads a process id and checks that the process exists and is a
// process, not one of its threads: the kernel filter compares process ids.
func parsePID(procRoot, s string) (uint32, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 32)
	if err != nil || n == 0 {
		return 0, errors.New("want a process id, a number greater than 0")
	}
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.FormatUint(n, 10), "status"))
	if err != nil {
		return 0, errors.New("no such process")
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Tgid:"); ok {
			if tgid := strings.TrimSpace(v); tgid != strconv.FormatUint(n, 10) {
				return 0, fmt.Errorf("that is a thread of process %s: give %s", tgid, tgid)
			}
		}
	}
	return uint32(n), nil
}

// parseNetNS reads a network namespace as its inode number, a name from
// `ip netns` (/run/netns/NAME) or a path to a namespace file, and checks
// that such a namespace exists.
func parseNetNS(procRoot, s string) (uint32, error) {
	s = strings.TrimSpace(s)
	want := errors.New("want a network namespace: its inode number (ls -Li /proc/PID/ns/net), a name from `ip netns`, or a path such as /proc/PID/ns/net")
	if s == "" {
		return 0, want
	}
	if s[0] >= '0' && s[0] <= '9' {
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil || n == 0 {
			return 0, want
		}
		found, sure := netnsExists(procRoot, uint32(n))
		if !found && sure {
			return 0, errors.New("no network namespace has this inode: no process is in it and no file binds it (ls -Li /proc/PID/ns/net shows a process's)")
		}
		return uint32(n), nil
	}
	path := s
	if !strings.ContainsRune(s, '/') {
		path = "/run/netns/" + s
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		if !strings.ContainsRune(s, '/') {
			return 0, fmt.Errorf("no network namespace named %s in /run/netns ('ip netns' lists them); give a name, an inode number or a path", s)
		}
		return 0, fmt.Errorf("%s: %v", path, err)
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(path, &fs); err != nil || fs.Type != unix.NSFS_MAGIC {
		return 0, fmt.Errorf("%s is not a namespace file", path)
	}
	return uint32(st.Ino), nil
}

// netnsExists looks for a network namespace with this inode among the
// processes' namespaces and the namespaces bound to files (ip netns). sure
// is false when some processes could not be read and this is not root
// (without CAP_SYS_PTRACE): then a namespace not found may still exist.
// Root reads every process but the few a security policy hides.
func netnsExists(procRoot string, ino uint32) (found, sure bool) {
	want := fmt.Sprintf("net:[%d]", ino)
	if b, err := os.ReadFile(filepath.Join(procRoot, "self/mountinfo")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 4 && f[3] == want {
				return true, true
			}
		}
	}
	dirs, err := os.ReadDir(procRoot)
	if err != nil {
		return false, false
	}
	sure = true
	for _, d := range dirs {
		if d.Name()[0] < '0' || d.Name()[0] > '9' {
			continue
		}
		l, err := os.Readlink(filepath.Join(procRoot, d.Name(), "ns/net"))
		switch {
		case err == nil && l == want:
			return true, true
		case errors.Is(err, os.ErrPermission) && os.Geteuid() != 0:
			sure = false
		}
	}
	return false, sure
}

// checkListenAddr checks a host:port to listen on, without listening.
func checkListenAddr(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return errors.New("want host:port, such as 127.0.0.1:9464")
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("port %q: want a number from 0 to 65535", port)
	}
	if strings.ContainsAny(host, " /") {
		return fmt.Errorf("host %q: want an IP address or a host name", host)
	}
	return nil
}

// flagError turns pflag's errors into one sentence that names the flag and
// what it wants, in words rather than Go's (no strconv.ParseUint).
func flagError(fs *pflag.FlagSet, cmd string, err error) error {
	var (
		inv *pflag.InvalidValueError
		nx  *pflag.NotExistError
		req *pflag.ValueRequiredError
	)
	switch {
	case errors.As(err, &inv):
		f := inv.GetFlag()
		var why string
		if _, ok := f.Value.(interface{ worded() }); ok {
			return usageError("--%s %s: %v", f.Name, quoteIfOdd(inv.GetValue()), errors.Unwrap(err))
		}
		switch f.Value.Type() {
		case "uint16":
			why = "want a number from 0 to 65535"
		case "uint32", "uint64", "uint":
			why = "want a whole number, 0 or more"
		case "int", "int64", "int32":
			why = "want a whole number"
		case "duration":
			why = "want a duration such as 500ms, 30s, 5m or 1h"
		case "bool":
			why = "want true or false"
		default:
			why = errors.Unwrap(err).Error()
		}
		return usageError("--%s %s: %s", f.Name, quoteIfOdd(inv.GetValue()), why)
	case errors.As(err, &nx):
		name := nx.GetSpecifiedName()
		if short := nx.GetSpecifiedShortnames(); short != "" {
			if len(short) > 1 {
				return usageError("unknown flag -%s in -%s; 'rstwatch %s --help' lists the flags", name[:1], short, cmd)
			}
			return usageError("unknown flag -%s; 'rstwatch %s --help' lists the flags", name[:1], cmd)
		}
		hint := ""
		if s := closestFlag(fs, name); s != "" {
			hint = fmt.Sprintf(" (did you mean --%s?)", s)
		}
		return usageError("unknown flag --%s%s; 'rstwatch %s --help' lists the flags", name, hint, cmd)
	case errors.As(err, &req):
		return usageError("--%s needs a value; 'rstwatch %s --help' says which", req.GetFlag().Name, cmd)
	}
	return usageError("%v; 'rstwatch %s --help' lists the flags", err, cmd)
}

func quoteIfOdd(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\"'") {
		return strconv.Quote(s)
	}
	return s
}

// closestFlag suggests a flag for a typo: the nearest name within two
// edits, or one that the typed name is a prefix of.
func closestFlag(fs *pflag.FlagSet, name string) string {
	best, bestDist := "", min(3, len(name)/2+1)
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		d := editDistance(name, f.Name)
		if len(name) >= 3 && strings.HasPrefix(f.Name, name) {
			d = 1
		}
		if d < bestDist {
			best, bestDist = f.Name, d
		}
	})
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
