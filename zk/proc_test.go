package zk

import (
	"archive/zip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeProc builds a /proc-like tree under t.TempDir(): each process gets
// cmdline, environ, stat, a root symlink to a shared fake filesystem, cwd,
// fd links and maps.
type fakeProc struct {
	t    testing.TB
	root string // the fake /proc
	fs   string // the fake filesystem the processes see as /
}

func newFakeProc(t testing.TB) *fakeProc {
	d := t.TempDir()
	fp := &fakeProc{t: t, root: filepath.Join(d, "proc"), fs: filepath.Join(d, "fs")}
	os.MkdirAll(fp.root, 0o755)
	os.MkdirAll(fp.fs, 0o755)
	return fp
}

func (fp *fakeProc) file(path, content string) {
	full := filepath.Join(fp.fs, path)
	os.MkdirAll(filepath.Dir(full), 0o755)
	if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
		fp.t.Fatal(err)
	}
}

// jar writes a jar at path with the given entries.
func (fp *fakeProc) jar(path string, entries map[string]string) {
	full := filepath.Join(fp.fs, path)
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

type procSpec struct {
	pid     string
	args    []string
	env     []string
	cwd     string
	start   string
	fds     []string // jar paths held open
	mapsJar []string
}

func (fp *fakeProc) proc(s procSpec) {
	d := filepath.Join(fp.root, s.pid)
	os.MkdirAll(filepath.Join(d, "fd"), 0o755)
	os.WriteFile(filepath.Join(d, "cmdline"), []byte(strings.Join(s.args, "\x00")+"\x00"), 0o644)
	os.WriteFile(filepath.Join(d, "environ"), []byte(strings.Join(s.env, "\x00")), 0o644)
	start := s.start
	if start == "" {
		start = "4242"
	}
	stat := s.pid + " (java (x)) S 1 1 1 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 30 0 " + start + " 100 10 18446744073709551615\n"
	os.WriteFile(filepath.Join(d, "stat"), []byte(stat), 0o644)
	os.Symlink(fp.fs, filepath.Join(d, "root"))
	cwd := s.cwd
	if cwd == "" {
		cwd = "/"
	}
	os.MkdirAll(filepath.Join(fp.fs, cwd), 0o755)
	os.Symlink(filepath.Join(fp.fs, cwd), filepath.Join(d, "cwd"))
	for i, j := range s.fds {
		os.Symlink(j, filepath.Join(d, "fd", itoa(10+i)))
	}
	var maps strings.Builder
	for _, j := range s.mapsJar {
		maps.WriteString("7f00a0000000-7f00a0001000 r--s 00000000 08:01 1234 " + j + "\n")
	}
	maps.WriteString("7f00b0000000-7f00b0001000 r-xp 00000000 08:01 99 /usr/lib/jvm/lib/libjvm.so\n")
	os.WriteFile(filepath.Join(d, "maps"), []byte(maps.String()), 0o644)
}

func TestDiscover(t *testing.T) {
	fp := newFakeProc(t)
	fp.file("/etc/zookeeper/conf/zoo.cfg", `# a quorum member
tickTime=2000
dataDir=/var/lib/zookeeper
clientPort=10245
4lw.commands.whitelist=srvr, stat ,cons
admin.serverPort=9090
server.1=zk1.example:2888:3888
server.2=192.168.2.172:2888:3888;2181
server.3=[fd00::3]:2888:3888:observer;[fd00::3]:2181
`)
	fp.file("/var/lib/zookeeper/myid", "1\n")
	fp.proc(procSpec{pid: "100", args: []string{"/usr/bin/java", "-Dzookeeper.log.dir=/var/log/zookeeper", "-Dzookeeper.admin.enableServer=false",
		"-cp", "/usr/share/java/zookeeper.jar", "org.apache.zookeeper.server.quorum.QuorumPeerMain", "/etc/zookeeper/conf/zoo.cfg"}})
	fp.file("/srv/zk/conf/zoo.cfg", "clientPort=2182\nclientPortAddress=10.0.0.5\ndataDir=/srv/zk/data\nadmin.serverAddress=127.0.0.1\n")
	fp.proc(procSpec{pid: "200", cwd: "/srv/zk", args: []string{"java", "-cp", "lib/*", "org.apache.zookeeper.server.ZooKeeperServerMain", "conf/zoo.cfg"}})
	fp.proc(procSpec{pid: "300", args: []string{"/usr/bin/java", "-jar", "app.jar", "org.apache.zookeeper.server.ZooKeeperServerMain"}}) // a program argument, not a server
	fp.proc(procSpec{pid: "400", args: []string{"bash", "-c", "echo org.apache.zookeeper.server.quorum.QuorumPeerMain"}})
	fp.proc(procSpec{pid: "500", args: []string{"java", "org.apache.zookeeper.server.ZooKeeperServerMain", "2183", "/tmp/data"}})
	os.MkdirAll(filepath.Join(fp.root, "self"), 0o755)

	ds, err := Discover(fp.root)
	if err != nil {
		t.Fatal(err)
	}
	byPID := map[int]Discovered{}
	for _, d := range ds {
		byPID[d.PID] = d
	}
	d := byPID[100]
	if d.Config == nil || d.MyID != 1 || d.Target.Client != "127.0.0.1:10245" || d.Target.Admin != "" {
		t.Errorf("pid 100: %+v (config %+v)", d, d.Config)
	}
	if strings.Join(d.Config.Whitelist, ",") != "srvr,stat,cons" || len(d.Config.Servers) != 3 ||
		strings.Join(d.Members, ",") != "192.168.2.172:2181,[fd00::3]:2181" || d.Config.Servers[2].Role != "observer" {
		t.Errorf("pid 100 config: %+v members %v", d.Config, d.Members)
	}
	d = byPID[200]
	if d.ConfigPath != "conf/zoo.cfg" || d.Target.Client != "10.0.0.5:2182" || d.Target.Admin != "127.0.0.1:8080" {
		t.Errorf("pid 200: %+v", d)
	}
	if d := byPID[500]; d.Config == nil || d.Target.Client != "127.0.0.1:2183" {
		t.Errorf("pid 500: %+v", d)
	}
	if _, ok := byPID[300]; ok {
		t.Error("a program argument was taken for a server main class")
	}
	if _, ok := byPID[400]; ok {
		t.Error("bash was taken for a server")
	}
	if _, err := Discover(filepath.Join(fp.root, "missing")); err == nil {
		t.Error("missing proc root: no error")
	}
}

func TestParseZooCfgErrors(t *testing.T) {
	for _, bad := range []string{"clientPort=abc", "server.x=a:1:2", "server.1=host", "server.1=[::1:2888:3888", "admin.serverPort=70000", "server.1=h:1:2;x:y"} {
		if _, err := ParseZooCfg([]byte(bad)); err == nil {
			t.Errorf("ParseZooCfg(%q) succeeded", bad)
		}
	}
	c, err := ParseZooCfg([]byte("clientPort : 2181\nadmin.enableServer=false\n4lw.commands.whitelist=\nkey\\\n=continued\n"))
	if err != nil || c.ClientPort != 2181 || c.AdminEnabled || !c.WhitelistSet || len(c.Whitelist) != 0 {
		t.Errorf("cfg %+v %v", c, err)
	}
}

func TestClientVersions(t *testing.T) {
	fp := newFakeProc(t)
	// By name, no version in the manifest: trust the name.
	fp.jar("/opt/a/lib/zookeeper-3.4.5.jar", map[string]string{"META-INF/MANIFEST.MF": "Manifest-Version: 1.0\r\n\r\n"})
	fp.proc(procSpec{pid: "10", args: []string{"/usr/bin/java", "-Xmx1g", "-cp", "/opt/a/lib/guava.jar:/opt/a/lib/zookeeper-3.4.5.jar", "com.example.Main", "-cp", "/nope/zookeeper-9.9.9.jar"}})
	// OSGi manifest (3.4 style) beats a misleading name.
	fp.jar("/opt/b/zookeeper-latest.jar", map[string]string{"META-INF/MANIFEST.MF": "Manifest-Version: 1.0\nBundle-Version: 3.4.6\n\n"})
	fp.jar("/opt/b/zookeeper.jar", map[string]string{"META-INF/MANIFEST.MF": "Manifest-Version: 1.0\nBundle-Version: 3.4.6\nImplementation-Vendor: x\n\n"})
	fp.proc(procSpec{pid: "11", args: []string{"java", "com.example.Main"}, env: []string{"HOME=/root", "CLASSPATH=/opt/b/zookeeper.jar"}})
	// Shaded fat jar run with -jar, library found by its pom.properties.
	fp.jar("/srv/app/app.jar", map[string]string{
		"META-INF/MANIFEST.MF": "Manifest-Version: 1.0\nMain-Class: com.example.Main\nClass-Path: lib/dep.jar\n\n",
		pomPath:                "#Generated by Maven\nversion=3.5.6\ngroupId=org.apache.zookeeper\nartifactId=zookeeper\n",
	})
	fp.proc(procSpec{pid: "12", cwd: "/srv/app", args: []string{"java", "-jar", "app.jar"}})
	// -jar whose manifest Class-Path names the library.
	fp.jar("/srv/b/b.jar", map[string]string{"META-INF/MANIFEST.MF": "Manifest-Version: 1.0\nClass-Path: lib/zookeeper-3.6.3.jar\n  lib/other.jar\n\n"})
	fp.jar("/srv/b/lib/zookeeper-3.6.3.jar", map[string]string{pomPath: "version=3.6.3\n"})
	fp.proc(procSpec{pid: "13", args: []string{"java", "-jar", "/srv/b/b.jar"}})
	// Only an open fd shows the jar (JDK 9+); wildcard classpath elsewhere.
	fp.jar("/opt/c/zookeeper-3.4.14.jar", map[string]string{})
	fp.proc(procSpec{pid: "14", args: []string{"java", "-cp", "/opt/none/*", "Main"}, fds: []string{"/opt/c/zookeeper-3.4.14.jar"}})
	fp.jar("/opt/d/lib/zookeeper-3.5.0-alpha.jar", map[string]string{})
	fp.proc(procSpec{pid: "15", args: []string{"java", "-cp", "/opt/d/lib/*", "Main"}})
	// maps only; and a nested Spring Boot jar.
	fp.proc(procSpec{pid: "16", args: []string{"python3"}, mapsJar: []string{"/opt/a/lib/zookeeper-3.4.5.jar"}})
	fp.jar("/srv/boot/boot.jar", map[string]string{"BOOT-INF/lib/zookeeper-3.4.13.jar": "x", "BOOT-INF/lib/zookeeper-jute-3.5.9.jar": "x"})
	fp.proc(procSpec{pid: "17", args: []string{"java", "-jar", "/srv/boot/boot.jar"}})
	// Nothing to find.
	fp.proc(procSpec{pid: "18", args: []string{"java", "-cp", "/opt/a/lib/guava.jar:/opt/zookeeper-jute-3.8.0.jar", "Main"}})

	r := &ClientVersions{ProcRoot: fp.root}
	tests := []struct {
		pid          int
		want, source string
	}{
		{10, "3.4.5", "jar name /opt/a/lib/zookeeper-3.4.5.jar"},
		{11, "3.4.6", "Bundle-Version in /opt/b/zookeeper.jar"},
		{12, "3.5.6", "pom.properties in app.jar"},
		{13, "3.6.3", "pom.properties in /srv/b/lib/zookeeper-3.6.3.jar"},
		{14, "3.4.14", "jar name /opt/c/zookeeper-3.4.14.jar"},
		{15, "3.5.0-alpha", "jar name /opt/d/lib/zookeeper-3.5.0-alpha.jar"},
		{16, "3.4.5", "jar name /opt/a/lib/zookeeper-3.4.5.jar"},
		{17, "3.4.13", "nested jar name in /srv/boot/boot.jar"},
		{18, "", ""},
	}
	for _, tt := range tests {
		v, err := r.Resolve(tt.pid)
		if err != nil || v.Version != tt.want || v.Source != tt.source {
			t.Errorf("pid %d: %+v %v, want %q from %q", tt.pid, v, err, tt.want, tt.source)
		}
	}
	if _, err := r.Resolve(99); err == nil {
		t.Error("missing pid: no error")
	}
	// Cached per (pid, start time): a new process with the same pid is
	// looked at afresh.
	fp.proc(procSpec{pid: "19", args: []string{"java", "-cp", "/opt/a/lib/zookeeper-3.4.5.jar", "Main"}})
	r.Resolve(19)
	os.RemoveAll(filepath.Join(fp.root, "19"))
	fp.proc(procSpec{pid: "19", start: "9999", args: []string{"java", "-cp", "/opt/c/zookeeper-3.4.14.jar", "Main"}})
	if v, _ := r.Resolve(19); v.Version != "3.4.14" {
		t.Errorf("reused pid: %+v", v)
	}
}

// The real Debian jar has no Implementation-Version; its pom.properties
// says 3.8.0.
func TestClientVersionRealDebianJar(t *testing.T) {
	const jar = "/usr/share/java/zookeeper.jar"
	f, err := os.Open(jar)
	if err != nil {
		t.Skipf("no %s: %v", jar, err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	jv, err := inspectJar(f, fi.Size(), jar, true)
	if err != nil || jv.Version != "3.8.0" {
		t.Errorf("%s: %+v %v", jar, jv, err)
	}
}
