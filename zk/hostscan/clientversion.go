package hostscan

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Library is the ZooKeeper client library of a local process.
type Library struct {
	// Name says which library: JavaClient, Kazoo, NodeClient, CClient, or
	// a Go module path.
	Name    string
	Version string // "" when it could not be read
	Source  string // where Version was read, e.g. "pom.properties in /usr/share/java/zookeeper.jar"
	// Installed is true when the library was found where this runtime
	// loads it from (Python's dist-packages, Node's node_modules) rather
	// than in what the process itself has open or mapped: the process may
	// not have imported it.
	Installed bool
}

// Known reports whether the library's version was found.
func (l Library) Known() bool { return l.Version != "" }

// Names of the client libraries rstwatch can read a version of.
const (
	JavaClient = "Apache ZooKeeper Java client"
	Kazoo      = "kazoo"
	NodeClient = "node-zookeeper-client"
	CClient    = "ZooKeeper C client"
)

// goClients are Go ZooKeeper client modules.
var goClients = []string{"github.com/go-zookeeper/zk", "github.com/samuel/go-zookeeper"}

// Process is what rstwatch learned of a local process that may be a
// ZooKeeper client: what runs it and which client library it has.
type Process struct {
	PID     int
	Start   uint64 // start time (clock ticks since boot), to tell a reused pid apart
	Runtime Runtime
	Library Library // zero when no client library was found
}

// Scanner reads local processes' runtimes and client libraries through
// /proc, caching per (pid, start time) since a process does not change
// either, and a pid may be reused. Safe for concurrent use.
type Scanner struct {
	ProcRoot string // DefaultProcRoot when ""
	MaxJars  int    // jars opened per JVM (not counting by-name hits); 64 when 0

	mu    sync.Mutex
	procs map[procKey]Process
	exes  map[ExeID]Runtime // per executable: Go build info is read once
}

type procKey struct {
	pid   int
	start uint64
}

// maxCachedProcs bounds the caches; they are reset when full (entries are
// cheap to recompute and dead pids are not otherwise noticed).
const maxCachedProcs = 4096

func (s *Scanner) proc(pid int) proc {
	root := s.ProcRoot
	if root == "" {
		root = DefaultProcRoot
	}
	return proc{root: root, pid: pid}
}

// Runtime tells what runs pid, from its executable and mapped files. It
// reads a few /proc files (and, once per executable, Go build info), so it
// is cheap enough to call as a connection is made.
func (s *Scanner) Runtime(pid int) (Runtime, error) {
	p := s.proc(pid)
	f, path, id, err := openExe(p)
	if err != nil {
		return Runtime{}, err
	}
	defer f.Close()
	maps := mappedFiles(p)
	s.mu.Lock()
	r, ok := s.exes[id]
	s.mu.Unlock()
	if ok && id != (ExeID{}) {
		// Same executable: the same Go build info; the maps are this
		// process's own (a JVM is told by libjvm.so).
		if r.Kind == RuntimeGo {
			r.Exe, r.maps = path, maps
			return r, nil
		}
	}
	r = runtimeOf(path, f, maps)
	s.mu.Lock()
	if s.exes == nil || len(s.exes) >= maxCachedProcs {
		s.exes = map[ExeID]Runtime{}
	}
	s.exes[id] = r
	s.mu.Unlock()
	return r, nil
}

// Process returns pid's runtime and client library. The error says the
// process could not be read at all (gone, or no permission); a readable
// process without a client library found gives a zero Library and nil.
func (s *Scanner) Process(pid int) (Process, error) {
	p := s.proc(pid)
	start, err := p.startTime()
	if err != nil {
		return Process{}, fmt.Errorf("client library of pid %d: %w", pid, err)
	}
	key := procKey{pid, start}
	s.mu.Lock()
	if v, ok := s.procs[key]; ok {
		s.mu.Unlock()
		return v, nil
	}
	s.mu.Unlock()
	r, err := s.Runtime(pid)
	if err != nil {
		return Process{}, fmt.Errorf("client library of pid %d: %w", pid, err)
	}
	out := Process{PID: pid, Start: start, Runtime: r}
	switch r.Kind {
	case RuntimeJava:
		out.Library, err = s.javaLibrary(p)
	case RuntimePython:
		out.Library = pythonLibrary(p, r)
	case RuntimeNode:
		out.Library = nodeLibrary(p)
	case RuntimeGo:
		for _, m := range goClients {
			if v, ok := r.goDeps[m]; ok {
				out.Library = Library{Name: m, Version: strings.TrimPrefix(v, "v"), Source: "Go build information in " + r.Exe}
				break
			}
		}
	}
	if err != nil {
		return Process{}, fmt.Errorf("client library of pid %d: %w", pid, err)
	}
	// Any runtime may load the C client (a native program, or a binding).
	if !out.Library.Known() && out.Library.Name == "" {
		out.Library = cLibrary(p, r.maps)
	}
	s.mu.Lock()
	if s.procs == nil || len(s.procs) >= maxCachedProcs {
		s.procs = map[procKey]Process{}
	}
	s.procs[key] = out
	s.mu.Unlock()
	return out, nil
}

// javaLibrary finds the Java client library a JVM loads: from its command
// line (classpath, -jar and its manifest Class-Path), the CLASSPATH the JVM
// itself reads when no classpath is given, the jars it holds open (JDK 9+)
// and the ones it has mapped.
func (s *Scanner) javaLibrary(p proc) (Library, error) {
	args, err := p.cmdline()
	if err != nil {
		return Library{}, err
	}
	lib := Library{Name: JavaClient}
	jc := ParseJavaCommand(args)
	var cands []string
	switch {
	case jc.Jar != "":
		cands = append(cands, jc.Jar)
		cands = append(cands, manifestClassPath(p, jc.Jar)...)
	case jc.Classpath != nil:
		cands = append(cands, jc.Classpath...)
	case jc.IsJava:
		// The JVM reads CLASSPATH only when the command line gives no
		// classpath; the process is known to be a JVM at this point.
		cands = append(cands, ClasspathFromEnviron(p.environ())...)
	}
	cands = expandWildcards(p, cands)
	cands = append(cands, openJars(p)...)
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
		if v := inspect(p, c, true); v.Version != "" {
			lib.Version, lib.Source = v.Version, v.Source
			return lib, nil
		}
		if v, ok := VersionFromJarName(c); ok {
			lib.Version, lib.Source = v, "jar name "+c
			return lib, nil
		}
	}
	max := s.MaxJars
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
		if v := inspect(p, c, false); v.Version != "" {
			lib.Version, lib.Source = v.Version, v.Source
			return lib, nil
		}
	}
	return Library{}, nil
}

func inspect(p proc, jar string, isZK bool) JarVersion {
	f, err := os.Open(p.file(jar))
	if err != nil {
		return JarVersion{}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return JarVersion{}
	}
	jv, err := inspectJar(f, fi.Size(), jar, isZK)
	if err != nil {
		return JarVersion{}
	}
	return jv
}

func manifestClassPath(p proc, jar string) []string {
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
func expandWildcards(p proc, cands []string) []string {
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
func openJars(p proc) []string {
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

// IsRstwatch reports whether pid runs an rstwatch binary: its executable's
// Go build information names rstwatch's module. It is read once per
// executable file.
func (s *Scanner) IsRstwatch(pid int) (bool, error) {
	f, path, id, err := openExe(s.proc(pid))
	if err != nil {
		return false, err
	}
	defer f.Close()
	s.mu.Lock()
	r, ok := s.exes[id]
	s.mu.Unlock()
	if ok && id != (ExeID{}) {
		return r.IsRstwatch(), nil
	}
	r = runtimeOf(path, f, nil)
	if r.Kind == RuntimeGo {
		// Only Go build info is cached per executable; the kind of other
		// programs depends on what each process maps.
		s.mu.Lock()
		if s.exes == nil || len(s.exes) >= maxCachedProcs {
			s.exes = map[ExeID]Runtime{}
		}
		s.exes[id] = r
		s.mu.Unlock()
	}
	return r.IsRstwatch(), nil
}
