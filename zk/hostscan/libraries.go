package hostscan

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/rstwatch/rstwatch/zk"
)

// pythonLibrary looks for kazoo where this interpreter imports from: the
// script's directory, then its prefix's site-packages, and for Debian's own
// interpreter (prefix /usr) Debian's dist-packages directories. Another
// interpreter (pyenv's, one built into /usr/local) does not import from
// Debian's, so a kazoo there is not its. PYTHONPATH, user site directories
// and virtual environments run through a symlinked interpreter (the
// executable is then the base's) are not followed. It reads the
// package's own metadata (dist-info METADATA or egg-info PKG-INFO). The
// process may not have imported it: pure-Python modules leave no trace in
// /proc, so the result is marked Installed.
func pythonLibrary(p proc, r Runtime) Library {
	exe := inRoot(p, strings.TrimSuffix(r.Exe, " (deleted)"))
	ver := strings.TrimPrefix(filepath.Base(exe), "python") // "3.11"
	prefix := filepath.Dir(filepath.Dir(exe))               // /usr, /usr/local, pyenv's
	var dirs []string
	if args, err := p.cmdline(); err == nil {
		if script := pythonScript(args); script != "" {
			dirs = append(dirs, filepath.Dir(absIn(p, script)))
		}
	}
	if ver != "" {
		dirs = append(dirs, filepath.Join(prefix, "lib", "python"+ver, "site-packages"))
	}
	if prefix == "/usr" {
		// Debian's sys.path: /usr/local/lib/python3.X/dist-packages,
		// /usr/lib/python3/dist-packages, /usr/lib/python3.X/dist-packages.
		if ver != "" {
			dirs = append(dirs, filepath.Join("/usr/local/lib", "python"+ver, "dist-packages"))
		}
		dirs = append(dirs, "/usr/lib/python3/dist-packages")
		if ver != "" {
			dirs = append(dirs, filepath.Join("/usr/lib", "python"+ver, "dist-packages"))
		}
	}
	for _, d := range dedupe(dirs) {
		for _, pattern := range []string{"kazoo-*.dist-info", "kazoo-*.egg-info"} {
			matches, _ := filepath.Glob(filepath.Join(p.file(d), pattern))
			for _, m := range matches {
				meta := filepath.Join(m, "METADATA")
				if strings.HasSuffix(m, ".egg-info") {
					meta = filepath.Join(m, "PKG-INFO")
				}
				b, err := readBounded(meta)
				if err != nil {
					continue
				}
				if v := metadataVersion(b); v != "" {
					shown := filepath.Join(d, filepath.Base(m), filepath.Base(meta))
					return Library{Name: Kazoo, Version: v, Source: shown, Installed: true}
				}
			}
		}
	}
	return Library{}
}

// pythonScript is the script a python command line runs, "" for -c, -m or
// an interactive interpreter.
func pythonScript(args []string) string {
	for i := 1; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-c" || a == "-m":
			return ""
		case a == "-W" || a == "-X" || a == "-Q":
			i++
		case strings.HasPrefix(a, "-"):
		default:
			return a
		}
	}
	return ""
}

// metadataVersion reads "Version:" from Python package metadata.
func metadataVersion(b []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			break // end of the headers
		}
		if v, ok := strings.CutPrefix(line, "Version:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// nodeLibrary looks for node-zookeeper-client the way require() resolves
// it from the main script: node_modules in the script's directory and each
// parent. The process may not have required it: marked Installed.
func nodeLibrary(p proc) Library {
	args, err := p.cmdline()
	if err != nil {
		return Library{}
	}
	script := ""
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "-e" || a == "--eval" || a == "-p" || a == "--print" {
			return Library{}
		}
		if a == "-r" || a == "--require" {
			i++
			continue
		}
		if !strings.HasPrefix(a, "-") {
			script = a
			break
		}
	}
	if script == "" {
		return Library{}
	}
	for dir := filepath.Dir(absIn(p, script)); ; dir = filepath.Dir(dir) {
		pkg := filepath.Join(dir, "node_modules", NodeClient, "package.json")
		if b, err := readBounded(p.file(pkg)); err == nil {
			var m struct {
				Name    string `json:"name"`
				Version string `json:"version"`
			}
			if json.Unmarshal(b, &m) == nil && m.Name == NodeClient && m.Version != "" {
				return Library{Name: NodeClient, Version: m.Version, Source: pkg + " (resolved from " + script + ")", Installed: true}
			}
		}
		if dir == "/" || dir == "." {
			return Library{}
		}
	}
}

// absIn makes a path the process gave relative to its working directory
// absolute, as the process sees it.
func absIn(p proc, path string) string {
	if filepath.IsAbs(path) {
		return filepath.Clean(path)
	}
	if cwd, err := os.Readlink(p.path("cwd")); err == nil && filepath.IsAbs(cwd) {
		return filepath.Join(inRoot(p, cwd), path)
	}
	return filepath.Clean(path)
}

// inRoot turns a path as /proc's links name it from rstwatch's side into
// the path the process itself sees: a process under chroot sees it below
// its own root.
func inRoot(p proc, path string) string {
	if root, err := os.Readlink(p.path("root")); err == nil && root != "/" {
		if rel, ok := strings.CutPrefix(path, root); ok && (rel == "" || rel[0] == '/') {
			return "/" + strings.TrimPrefix(rel, "/")
		}
	}
	return path
}

var cClientSO = regexp.MustCompile(`^libzookeeper_(mt|st)\.so`)

// cVersionMark precedes the version in the C library's binary
// ("zookeeper C client 3.8.0").
var cVersionMark = []byte("zookeeper C client ")

// maxSO bounds how much of a shared object is searched.
const maxSO = 32 << 20

// cLibrary finds the ZooKeeper C client among the mapped shared objects and
// reads its version from the library's own identification string.
func cLibrary(p proc, maps []string) Library {
	for _, m := range maps {
		if !cClientSO.MatchString(filepath.Base(m)) {
			continue
		}
		lib := Library{Name: CClient, Source: "mapped " + m}
		f, err := os.Open(p.file(m))
		if err != nil {
			return lib
		}
		b, err := io.ReadAll(io.LimitReader(f, maxSO))
		f.Close()
		if err != nil {
			return lib
		}
		if i := bytes.Index(b, cVersionMark); i >= 0 {
			rest := b[i+len(cVersionMark):]
			end := bytes.IndexByte(rest, 0)
			if end < 0 || end > 64 {
				end = min(len(rest), 64)
			}
			v := string(rest[:end])
			if _, err := zk.ParseVersion(v); err == nil {
				lib.Version = v
				lib.Source = `"zookeeper C client ` + v + `" in ` + m
			}
		}
		return lib
	}
	return Library{}
}
