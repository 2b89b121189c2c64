package workload

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Mount is a cgroup v2 mount as /proc/self/mountinfo lists it.
type Mount struct {
	Root  string // the hierarchy's directory mounted, from our cgroup namespace's root
	Point string // where it is mounted
}

// ParseMountinfo returns the cgroup2 mounts in a mountinfo file
// (proc(5): "ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - TYPE
// SOURCE SUPER").
func ParseMountinfo(b []byte) []Mount {
	var out []Mount
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		f := strings.Fields(string(line))
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+1 >= len(f) || f[sep+1] != "cgroup2" {
			continue
		}
		out = append(out, Mount{Root: unescapeMount(f[3]), Point: unescapeMount(f[4])})
	}
	return out
}

// unescapeMount undoes the kernel's octal escapes of ' ', '\t', '\n', '\\'.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ParseProcCgroup returns the cgroup v2 path in a /proc/PID/cgroup file
// (the "0::" line), from the reader's cgroup namespace root: a process
// outside that namespace has a path that climbs out of it ("/../x").
func ParseProcCgroup(b []byte) (string, bool) {
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		if p, ok := bytes.CutPrefix(line, []byte("0::")); ok && len(p) > 0 && p[0] == '/' {
			return string(p), true
		}
	}
	return "", false
}

// isCgroup2 reports whether dir is on a cgroup v2 file system.
func isCgroup2(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
}

// findRoot returns the cgroup v2 directory to name cgroups from: root if
// given (or its "unified" subdirectory on a hybrid host's /sys/fs/cgroup),
// else the mount found in mountinfo.
func findRoot(root string, mountinfo []byte) (string, error) {
	if root != "" {
		if isCgroup2(root) {
			return root, nil
		}
		if u := filepath.Join(root, "unified"); isCgroup2(u) {
			return u, nil
		}
		return "", fmt.Errorf("%s is not a cgroup v2 file system (nor is %s/unified)", root, root)
	}
	mounts := ParseMountinfo(mountinfo)
	for _, m := range mounts {
		if m.Root == "/" && isCgroup2(m.Point) {
			return m.Point, nil
		}
	}
	if len(mounts) > 0 {
		// Paths named from a part of the tree would be wrong paths.
		return "", fmt.Errorf("the cgroup v2 mount at %s shows only %s of the hierarchy: mount the host's /sys/fs/cgroup and name it with --cgroup-root", mounts[0].Point, mounts[0].Root)
	}
	return "", errors.New("no cgroup v2 hierarchy is mounted (looked in /proc/self/mountinfo); on a cgroup v1 host cgroup ids name nothing")
}

// Probe says where this host's cgroup v2 hierarchy is, from
// /proc/self/mountinfo, or why there is none: without it cgroup ids name
// no unit, container or pod.
func Probe() (string, error) {
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	return findRoot("", mi)
}

// inode returns a directory's inode number, which on cgroup v2 is the
// cgroup's id (what bpf_get_current_cgroup_id returns).
func inode(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// maxCgroups bounds one scan: a node has hundreds to a few thousand.
const maxCgroups = 1 << 17

// scanTree walks the cgroup directories under root and calls found for
// each with its id and path from root ("/" for root itself).
func scanTree(root string, found func(id uint64, rel string)) error {
	n := 0
	var walk func(dir, rel string, depth int) error
	walk = func(dir, rel string, depth int) error {
		id, err := inode(dir)
		if err != nil {
			return err
		}
		found(id, rel)
		if n++; n >= maxCgroups || depth >= maxDepth {
			return nil
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if !e.IsDir() || n >= maxCgroups {
				continue
			}
			sub := rel + "/" + e.Name()
			if rel == "/" {
				sub = "/" + e.Name()
			}
			// A cgroup removed during the walk is not an error.
			if err := walk(filepath.Join(dir, e.Name()), sub, depth+1); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		return nil
	}
	return walk(root, "/", 0)
}
