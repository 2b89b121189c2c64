package hostscan

import (
	"archive/zip"
	"bufio"
	"bytes"
	"fmt"
	"io"
	"path"
	"regexp"
	"strings"

	"github.com/rstwatch/rstwatch/zk"
)

// pomPath is where Maven puts the ZooKeeper artifact's coordinates, also
// inside shaded jars that embed the library.
const pomPath = "META-INF/maven/org.apache.zookeeper/zookeeper/pom.properties"

// jarNameVersion matches the client library jar (not zookeeper-jute-…,
// zookeeper-recipes-…): "zookeeper-3.4.5.jar", "zookeeper-3.5.0-alpha.jar".
var jarNameVersion = regexp.MustCompile(`^zookeeper-([0-9]+\.[0-9]+(?:\.[0-9]+)?(?:[-.][A-Za-z0-9]+)*)\.jar$`)

// VersionFromJarName returns the version in a ZooKeeper jar's file name.
func VersionFromJarName(name string) (string, bool) {
	m := jarNameVersion.FindStringSubmatch(path.Base(name))
	if m == nil {
		return "", false
	}
	return m[1], true
}

// isZooKeeperJarName: the jar is the library itself, by name.
func isZooKeeperJarName(name string) bool {
	b := path.Base(name)
	_, ok := VersionFromJarName(b)
	return ok || b == "zookeeper.jar"
}

// ParseManifest parses META-INF/MANIFEST.MF's main section (continuation
// lines start with one space).
func ParseManifest(b []byte) map[string]string {
	m := map[string]string{}
	var key string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" {
			break // end of the main section
		}
		if strings.HasPrefix(line, " ") && key != "" {
			m[key] += line[1:]
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			key = ""
			continue
		}
		key = strings.TrimSpace(k)
		m[key] = strings.TrimPrefix(v, " ")
	}
	return m
}

// ParsePomProperties parses a pom.properties file.
func ParsePomProperties(b []byte) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return m
}

// JarVersion is the ZooKeeper version found in or on a jar.
type JarVersion struct {
	Version string
	Source  string // e.g. "pom.properties in /opt/app.jar"
}

// maxJarEntry bounds how much of one entry is read: manifests and pom
// files are small.
const maxJarEntry = 256 << 10

// inspectJar looks for the ZooKeeper version inside the jar at file (shown
// as name in sources). isZK says the jar is the library itself by name, so
// its manifest speaks for ZooKeeper; any jar may embed the library's
// pom.properties (shaded), or a nested zookeeper-X.jar (Spring Boot).
func inspectJar(r io.ReaderAt, size int64, name string, isZK bool) (JarVersion, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return JarVersion{}, fmt.Errorf("open jar %s: %w", name, err)
	}
	var manifest, pom *zip.File
	var nested string
	for _, f := range zr.File {
		switch {
		case f.Name == pomPath:
			pom = f
		case f.Name == "META-INF/MANIFEST.MF":
			manifest = f
		case nested == "" && strings.HasSuffix(f.Name, ".jar"):
			if v, ok := VersionFromJarName(f.Name); ok {
				nested = v
				if _, err := zk.ParseVersion(v); err != nil {
					nested = ""
				}
			}
		}
	}
	if pom != nil {
		if b, err := readEntry(pom); err == nil {
			if v := ParsePomProperties(b)["version"]; validVersion(v) {
				return JarVersion{v, "pom.properties in " + name}, nil
			}
		}
	}
	if isZK && manifest != nil {
		if b, err := readEntry(manifest); err == nil {
			m := ParseManifest(b)
			for _, k := range []string{"Implementation-Version", "Bundle-Version", "Specification-Version"} {
				if validVersion(m[k]) {
					return JarVersion{m[k], k + " in " + name}, nil
				}
			}
		}
	}
	if nested != "" {
		return JarVersion{nested, "nested jar name in " + name}, nil
	}
	return JarVersion{}, nil
}

func validVersion(v string) bool {
	_, err := zk.ParseVersion(v)
	return v != "" && err == nil
}

func readEntry(f *zip.File) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, maxJarEntry))
}

// jarManifest returns a jar's manifest main section.
func jarManifest(r io.ReaderAt, size int64) (map[string]string, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, err
	}
	for _, f := range zr.File {
		if f.Name == "META-INF/MANIFEST.MF" {
			b, err := readEntry(f)
			if err != nil {
				return nil, err
			}
			return ParseManifest(b), nil
		}
	}
	return map[string]string{}, nil
}
