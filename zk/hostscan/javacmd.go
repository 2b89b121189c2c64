package hostscan

import (
	"path/filepath"
	"strings"
)

// JavaCommand is what a java command line says about where classes come from.
type JavaCommand struct {
	IsJava    bool
	Classpath []string // -cp/-classpath/--class-path entries, in order
	Jar       string   // -jar's jar, "" when none
	MainClass string   // "" with -jar
	MainIndex int      // MainClass's index in args, -1 when none
}

// javaOptsWithValue take the next argument as their value.
var javaOptsWithValue = map[string]bool{
	"-p": true, "--module-path": true, "--upgrade-module-path": true,
	"--add-modules": true, "--limit-modules": true, "--add-reads": true,
	"--add-exports": true, "--add-opens": true, "--patch-module": true,
	"--source": true, "--enable-native-access": true,
}

// ParseJavaCommand reads a java command line (from /proc/PID/cmdline).
// Only the launcher's own options count: after the main class or -jar's
// jar come the program's arguments, which may look like anything.
func ParseJavaCommand(args []string) JavaCommand {
	jc := JavaCommand{MainIndex: -1}
	if len(args) == 0 || !strings.HasPrefix(filepath.Base(args[0]), "java") {
		return jc
	}
	jc.IsJava = true
	for i := 1; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-cp" || a == "-classpath" || a == "--class-path":
			if i+1 < len(args) {
				jc.Classpath = SplitClasspath(args[i+1])
				i++
			}
		case strings.HasPrefix(a, "--class-path="):
			jc.Classpath = SplitClasspath(strings.TrimPrefix(a, "--class-path="))
		case a == "-jar":
			if i+1 < len(args) {
				jc.Jar = args[i+1]
			}
			return jc
		case a == "-m" || a == "--module":
			return jc // a module's main: no classpath main class
		case javaOptsWithValue[a]:
			i++
		case strings.HasPrefix(a, "-"):
		default:
			jc.MainClass, jc.MainIndex = a, i
			return jc
		}
	}
	return jc
}

// SplitClasspath splits a classpath on ':' dropping empty entries.
func SplitClasspath(cp string) []string {
	var out []string
	for _, e := range strings.Split(cp, ":") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// ClasspathFromEnviron returns CLASSPATH from /proc/PID/environ entries.
func ClasspathFromEnviron(env []string) []string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "CLASSPATH="); ok {
			return SplitClasspath(v)
		}
	}
	return nil
}

// ManifestClassPath resolves a manifest's Class-Path (space-separated URLs
// relative to the jar's directory) to paths.
func ManifestClassPath(jar, classPath string) []string {
	var out []string
	for _, u := range strings.Fields(classPath) {
		u = strings.TrimPrefix(u, "file:")
		if u == "" {
			continue
		}
		if !filepath.IsAbs(u) {
			u = filepath.Join(filepath.Dir(jar), u)
		}
		out = append(out, u)
	}
	return out
}

// JarsInMaps returns the .jar paths mapped in /proc/PID/maps.
func JarsInMaps(maps []byte) []string {
	var out []string
	seen := map[string]bool{}
	for _, line := range strings.Split(string(maps), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		p := strings.Join(f[5:], " ")
		if strings.HasSuffix(p, ".jar") && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}
