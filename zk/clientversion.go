package zk

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// ClientVersion is the ZooKeeper client library version of a process.
type ClientVersion struct {
	Version string // "" when it cannot be known
	Source  string // where it came from, e.g. "jar name /opt/lib/zookeeper-3.4.5.jar"
}

// Known reports whether the version was found.
func (c ClientVersion) Known() bool { return c.Version != "" }

// ClientVersions finds the ZooKeeper client library version of local
// processes, caching per (pid, start time) since a process does not change
// its library, and a pid may be reused.
type ClientVersions struct {
	ProcRoot string // DefaultProcRoot when ""
	MaxJars  int    // jars opened per process (not counting by-name hits); 64 when 0

	mu    sync.Mutex
	cache map[procKey]ClientVersion
}

type procKey struct {
	pid   int
	start uint64
}

// maxCachedProcs bounds the cache; it is reset when full (entries are cheap
// to recompute and dead pids are not otherwise noticed).
const maxCachedProcs = 4096

// Resolve returns pid's client library version. The error says the process
// could not be read at all (gone, or no permission); a readable process
// without a findable version gives a zero ClientVersion and nil.
func (r *ClientVersions) Resolve(pid int) (ClientVersion, error) {
	root := r.ProcRoot
	if root == "" {
		root = DefaultProcRoot
	}
	p := proc{root: root, pid: pid}
	start, err := p.startTime()
	if err != nil {
		return ClientVersion{}, fmt.Errorf("client version of pid %d: %w", pid, err)
	}
	key := procKey{pid, start}
	r.mu.Lock()
	if v, ok := r.cache[key]; ok {
		r.mu.Unlock()
		return v, nil
	}
	r.mu.Unlock()
	v, err := r.resolve(p)
	if err != nil {
		return ClientVersion{}, fmt.Errorf("client version of pid %d: %w", pid, err)
	}
	r.mu.Lock()
	if r.cache == nil || len(r.cache) >= maxCachedProcs {
		r.cache = map[procKey]ClientVersion{}
	}
	r.cache[key] = v
	r.mu.Unlock()
	return v, nil
}

func (r *ClientVersions) resolve(p proc) (ClientVersion, error) {
	args, err := p.cmdline()
	if err != nil {
		return ClientVersion{}, err
	}
	jc := ParseJavaCommand(args)
	if !jc.IsJava {
		// Kernel threads and non-JVMs: still look at open jars, a JVM
		// may be started through a wrapper binary.
		jc = JavaCommand{}
	}
	var cands []string
	if jc.Jar != "" {
		cands = append(cands, jc.Jar)
		cands = append(cands, r.manifestClassPath(p, jc.Jar)...)
	} else if jc.Classpath != nil {
		cands = append(cands, jc.Classpath...)
	} else {
		cands = append(cands, ClasspathFromEnviron(p.environ())...)
	}
	cands = r.expandWildcards(p, cands)
	cands = append(cands, r.openJars(p)...)
	if b, err := readBounded(p.path("maps")); err == nil {
		cands = append(cands, JarsInMaps(b)...)
	}
	cands = dedupe(cands)

	// The library's own jar first (by name: decisive and cheap), then
	// every other jar for a shaded copy.
	for _, c := range cands {
		if !isZooKeeperJarName(c) {
			continue
		}
		if v := r.inspect(p, c, true); v.Known() {
			return v, nil
		}
		if v, ok := VersionFromJarName(c); ok {
			return ClientVersion{v, "jar name " + c}, nil
		}
	}
	max := r.MaxJars
	if max <= 0 {
		max = 64
	}
	for _, c := range cands {
		if isZooKeeperJarName(c) || !strings.HasSuffix(c, ".jar") {
			continue
		}
		if max--; max < 0 {
			break
		}
		if v := r.inspect(p, c, false); v.Known() {
			return v, nil
		}
	}
	return ClientVersion{}, nil
}

func (r *ClientVersions) inspect(p proc, jar string, isZK bool) ClientVersion {
	f, err := os.Open(p.file(jar))
	if err != nil {
		return ClientVersion{}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return ClientVersion{}
	}
	jv, err := inspectJar(f, fi.Size(), jar, isZK)
	if err != nil {
		return ClientVersion{}
	}
	return ClientVersion(jv)
}

func (r *ClientVersions) manifestClassPath(p proc, jar string) []string {
	f, err := os.Open(p.file(jar))
	if err != nil {
		return nil
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil
	}
	m, err := jarManifest(f, fi.Size())
	if err != nil {
		return nil
	}
	return ManifestClassPath(jar, m["Class-Path"])
}

// expandWildcards turns "dir/*" classpath entries into dir's jars.
func (r *ClientVersions) expandWildcards(p proc, cands []string) []string {
	var out []string
	for _, c := range cands {
		if filepath.Base(c) != "*" {
			out = append(out, c)
			continue
		}
		dir := filepath.Dir(c)
		ents, err := os.ReadDir(p.file(dir))
		if err != nil {
			continue
		}
		for _, e := range ents {
			if strings.HasSuffix(strings.ToLower(e.Name()), ".jar") {
				out = append(out, filepath.Join(dir, e.Name()))
			}
		}
	}
	return out
}

// openJars lists jars the process holds open (JDK 9+ reads jars through
// file descriptors that may not show in maps).
func (r *ClientVersions) openJars(p proc) []string {
	ents, err := os.ReadDir(p.path("fd"))
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		t, err := os.Readlink(p.path("fd", e.Name()))
		if err == nil && strings.HasSuffix(t, ".jar") {
			out = append(out, t)
		}
	}
	return out
}

func dedupe(in []string) []string {
	seen := make(map[string]bool, len(in))
	out := in[:0]
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
