package zktest

import (
	"archive/zip"
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Real third-party ZooKeeper clients the tests drive: Debian's Java
// ZooKeeperMain (zookeeper), the C client cli_mt (zookeeper-bin), Python
// kazoo (python3-kazoo) and JavaScript node-zookeeper-client (npm, pinned
// in zk/zktest/node: `npm ci --prefix zk/zktest/node`).
const (
	Java  = "java"
	C     = "c"
	Kazoo = "kazoo"
	Node  = "node"
)

// AllClients lists every client kind.
var AllClients = []string{Java, C, Kazoo, Node}

// Paths of the clients' programs.
const (
	CliMT   = "/usr/lib/zookeeper/bin/cli_mt"
	Python3 = "/usr/bin/python3" // Debian's, where python3-kazoo is installed
)

// dir is this package's source directory, where the client scripts are.
func dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

// NodeModules is where `npm ci --prefix zk/zktest/node` installs
// node-zookeeper-client.
func NodeModules() string { return filepath.Join(dir(), "node", "node_modules") }

// ClientAvailable says why a client kind cannot run here, nil when it can.
func ClientAvailable(kind string) error {
	switch kind {
	case Java:
		return Available()
	case C:
		if _, err := os.Stat(CliMT); err != nil {
			return fmt.Errorf("the C client: %w (apt-get install zookeeper-bin)", err)
		}
	case Kazoo:
		if err := exec.Command(Python3, "-c", "import kazoo").Run(); err != nil {
			return fmt.Errorf("kazoo: %s -c 'import kazoo': %w (apt-get install python3-kazoo)", Python3, err)
		}
	case Node:
		if _, err := exec.LookPath("node"); err != nil {
			return fmt.Errorf("node: %w", err)
		}
		if _, err := os.Stat(filepath.Join(NodeModules(), "node-zookeeper-client", "package.json")); err != nil {
			return fmt.Errorf("node-zookeeper-client: %w (npm ci --prefix zk/zktest/node)", err)
		}
	default:
		return fmt.Errorf("unknown client kind %q", kind)
	}
	return nil
}

// SkipIfClientUnavailable skips (or, with RSTWATCH_REQUIRE_ZK=1, fails) t
// when a client kind cannot run here.
func SkipIfClientUnavailable(t testing.TB, kind string) {
	t.Helper()
	if err := ClientAvailable(kind); err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("ZooKeeper client %s required (%s=1) but unavailable: %v", kind, RequireEnv, err)
		}
		t.Skipf("ZooKeeper client %s unavailable, skipping: %v (set %s=1 to fail instead)", kind, err, RequireEnv)
	}
}

// ClientOptions tune StartClient.
type ClientOptions struct {
	// JavaClasspath replaces the Java client's classpath (e.g. a stand-in
	// jar from StandInJar); "" uses Debian's zookeeper.jar.
	JavaClasspath string
}

// Client is a running third-party client process, driven through its
// standard input and watched through its output.
type Client struct {
	Kind string
	PID  int
	Path string // the znode it watches

	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{}

	mu  sync.Mutex
	out strings.Builder
	cnd *sync.Cond
}

// StartClient starts a client of kind connected to server (host:port) that
// sets an exists watch on path. Call WaitReady before relying on the
// watch. The process is killed in t.Cleanup.
func StartClient(t testing.TB, kind, server, path string, o ClientOptions) *Client {
	t.Helper()
	SkipIfClientUnavailable(t, kind)
	var cmd *exec.Cmd
	switch kind {
	case Java:
		cp := o.JavaClasspath
		if cp == "" {
			var err error
			if cp, err = Classpath(); err != nil {
				t.Fatal(err)
			}
		}
		cmd = exec.Command("java", "-Xmx64m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xss512k",
			"-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", cp, "org.apache.zookeeper.ZooKeeperMain", "-server", server)
	case C:
		cmd = exec.Command(CliMT, "-h", server)
	case Kazoo:
		cmd = exec.Command(Python3, filepath.Join(dir(), "clients", "kazoo_client.py"), server, path)
	case Node:
		cmd = exec.Command("node", "client.js", server, path)
		cmd.Dir = filepath.Join(dir(), "node")
	default:
		t.Fatalf("unknown client kind %q", kind)
	}
	c := &Client{Kind: kind, Path: path, cmd: cmd, done: make(chan struct{})}
	c.cnd = sync.NewCond(&c.mu)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.stdin = stdin
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	// Its own process group; killed if the test binary dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s client: %v", kind, err)
	}
	c.PID = cmd.Process.Pid
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 0, 4096), 1<<20)
		for sc.Scan() {
			c.mu.Lock()
			c.out.WriteString(sc.Text() + "\n")
			c.cnd.Broadcast()
			c.mu.Unlock()
		}
	}()
	go func() {
		cmd.Wait()
		pw.Close()
		close(c.done)
		c.mu.Lock()
		c.cnd.Broadcast()
		c.mu.Unlock()
	}()
	t.Cleanup(func() { c.Kill() })
	return c
}

// readyMarks: what each client prints once connected, and once its watch
// is set.
func (c *Client) marks() (connected, watched *regexp.Regexp) {
	q := regexp.QuoteMeta(c.Path)
	switch c.Kind {
	case Java:
		return regexp.MustCompile(`state:SyncConnected`), regexp.MustCompile(`Node does not exist: ` + q + `|cZxid`)
	case C:
		return regexp.MustCompile(`CONNECTED_STATE`), regexp.MustCompile(q)
	}
	return nil, regexp.MustCompile(`(?m)^ready$`)
}

// WaitReady waits until the client is connected and its watch is set.
func (c *Client) WaitReady(timeout time.Duration) error {
	connected, watched := c.marks()
	deadline := time.Now().Add(timeout)
	if connected != nil {
		if err := c.waitFor(connected, deadline); err != nil {
			return err
		}
		// The shells take commands once connected.
		cmd := "wexists " + c.Path
		if c.Kind == Java {
			cmd = "stat -w " + c.Path
		}
		if _, err := io.WriteString(c.stdin, cmd+"\n"); err != nil {
			return fmt.Errorf("%s client: %w", c.Kind, err)
		}
	}
	return c.waitFor(watched, deadline)
}

func (c *Client) waitFor(re *regexp.Regexp, deadline time.Time) error {
	stop := time.AfterFunc(time.Until(deadline), func() {
		c.mu.Lock()
		c.cnd.Broadcast()
		c.mu.Unlock()
	})
	defer stop.Stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	for !re.MatchString(c.out.String()) {
		select {
		case <-c.done:
			return fmt.Errorf("%s client exited before %q; output:\n%s", c.Kind, re, c.out.String())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s client: no %q in time; output:\n%s", c.Kind, re, c.out.String())
		}
		c.cnd.Wait()
	}
	return nil
}

// Output is what the client printed so far.
func (c *Client) Output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.String()
}

// Quit closes the session normally (the client's own quit or close) and
// waits for the process to end.
func (c *Client) Quit(timeout time.Duration) error {
	if _, err := io.WriteString(c.stdin, "quit\n"); err != nil {
		return fmt.Errorf("%s client: %w", c.Kind, err)
	}
	select {
	case <-c.done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("%s client did not exit within %v after quit; output:\n%s", c.Kind, timeout, c.Output())
	}
}

// Signal sends sig to the client process.
func (c *Client) Signal(sig syscall.Signal) error { return syscall.Kill(c.PID, sig) }

// Kill kills the client with SIGKILL and waits for it (at most 10 s).
func (c *Client) Kill() {
	if c.cmd.Process == nil {
		return
	}
	select {
	case <-c.done:
		return
	default:
	}
	syscall.Kill(-c.PID, syscall.SIGKILL)
	syscall.Kill(c.PID, syscall.SIGKILL)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
	}
}

// Exited reports whether the client process has ended.
func (c *Client) Exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// StandInJar writes dir/zookeeper-VERSION.jar: Debian's 3.8.0 client jar
// relabelled as VERSION (its pom.properties), a stand-in for old releases
// that cannot be installed here. It runs the 3.8.0 code: it is for tests of
// what rstwatch reads and concludes from a client's version, not of the
// old library's behaviour.
func StandInJar(dir, version string) (string, error) {
	cp, err := Classpath()
	if err != nil {
		return "", err
	}
	src := strings.Split(cp, ":")[0]
	zr, err := zip.OpenReader(src)
	if err != nil {
		return "", err
	}
	defer zr.Close()
	out := filepath.Join(dir, "zookeeper-"+version+".jar")
	f, err := os.Create(out)
	if err != nil {
		return "", err
	}
	defer f.Close()
	zw := zip.NewWriter(f)
	const pom = "META-INF/maven/org.apache.zookeeper/zookeeper/pom.properties"
	for _, e := range zr.File {
		hdr := e.FileHeader
		w, err := zw.CreateHeader(&hdr)
		if err != nil {
			return "", err
		}
		if e.Name == pom {
			fmt.Fprintf(w, "artifactId=zookeeper\ngroupId=org.apache.zookeeper\nversion=%s\n", version)
			continue
		}
		r, err := e.Open()
		if err != nil {
			return "", err
		}
		_, err = io.Copy(w, r)
		r.Close()
		if err != nil {
			return "", err
		}
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	return out, nil
}

// StandInClasspath is the Java client's classpath with a stand-in jar in
// place of Debian's zookeeper.jar.
func StandInClasspath(jar string) (string, error) {
	cp, err := Classpath()
	if err != nil {
		return "", err
	}
	parts := strings.Split(cp, ":")
	parts[0] = jar
	return strings.Join(parts, ":"), nil
}
