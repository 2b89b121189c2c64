// Package zktest starts a real ZooKeeper server (Debian's 3.8.0 jars and a
// JVM) as a child process of a test, for this module's end-to-end tests, and
// gives scripted fake four-letter-word servers and a minimal session client.
//
// Everything listens on 127.0.0.1 only.
package zktest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// RequireEnv is the environment variable that turns "skip when java or the
// jars are missing" into a failure (CI sets RSTWATCH_REQUIRE_ZK=1).
const RequireEnv = "RSTWATCH_REQUIRE_ZK"

// JarsEnv overrides the directory holding zookeeper.jar (default /usr/share/java).
const JarsEnv = "RSTWATCH_ZK_JARS"

// ReadyTimeout bounds the wait for a started server to answer srvr.
const ReadyTimeout = 60 * time.Second

// Options configure one server.
type Options struct {
	// Whitelist is 4lw.commands.whitelist; "" leaves it unset, which on
	// 3.5.3+ means only srvr is answered.
	Whitelist string
	// Admin enables the AdminServer on a free loopback port.
	Admin bool
	// MaxClientCnxns is maxClientCnxns (connections per client address);
	// 0 leaves ZooKeeper's default (60).
	MaxClientCnxns int
}

// Server is a running ZooKeeper.
type Server struct {
	ClientAddr string // 127.0.0.1:port of the client port
	AdminAddr  string // 127.0.0.1:port of the AdminServer, "" when disabled
	Dir        string // zoo.cfg, data and log
	ConfigPath string
	PID        int

	cmd  *exec.Cmd
	cp   string
	done chan struct{}
}

// Classpath returns the minimal classpath for ZooKeeperServerMain from the
// Debian jars: zookeeper.jar's manifest Class-Path pulls in jute, netty,
// jetty, jackson, metrics, slf4j-api…; javax.servlet is missing from it and
// needed by the AdminServer; slf4j-simple gives readable logs.
func Classpath() (string, error) {
	dir := os.Getenv(JarsEnv)
	if dir == "" {
		dir = "/usr/share/java"
	}
	zkJar := filepath.Join(dir, "zookeeper.jar")
	if _, err := os.Stat(zkJar); err != nil {
		return "", fmt.Errorf("zookeeper jar: %w (apt-get install zookeeper, or set %s)", err, JarsEnv)
	}
	cp := []string{zkJar}
	for _, opt := range []string{"servlet-api.jar", "slf4j-simple.jar"} {
		if _, err := os.Stat(filepath.Join(dir, opt)); err == nil {
			cp = append(cp, filepath.Join(dir, opt))
		}
	}
	return strings.Join(cp, ":"), nil
}

// Available says why a real server cannot be started, nil when it can.
func Available() error {
	if _, err := exec.LookPath("java"); err != nil {
		return fmt.Errorf("java: %w", err)
	}
	_, err := Classpath()
	return err
}

// Start starts a server for t and stops it in t.Cleanup. When java or the
// jars are missing it skips t, or fails it if RSTWATCH_REQUIRE_ZK=1.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	SkipIfUnavailable(t)
	s, err := Launch(t.TempDir(), opts)
	if err != nil {
		t.Fatalf("start ZooKeeper: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// SkipIfUnavailable skips (or, with RSTWATCH_REQUIRE_ZK=1, fails) t when a
// real server cannot be started here.
func SkipIfUnavailable(t testing.TB) {
	t.Helper()
	if err := Available(); err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("real ZooKeeper required (%s=1) but unavailable: %v", RequireEnv, err)
		}
		t.Skipf("real ZooKeeper unavailable, skipping: %v (set %s=1 to fail instead)", err, RequireEnv)
	}
}

// Launch starts a server with its files under dir and waits until it
// answers srvr. The caller must call Stop. It is for TestMain-style sharing
// of one server across a test binary; tests should prefer Start.
func Launch(dir string, opts Options) (*Server, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	var lastErr error
	// Free ports are picked by closing a listener, so another process may
	// take one before the JVM binds it: retry once with fresh ports.
	for attempt := 0; attempt < 2; attempt++ {
		s, err := launch(dir, attempt, opts)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func launch(dir string, attempt int, opts Options) (*Server, error) {
	cp, err := Classpath()
	if err != nil {
		return nil, err
	}
	dir = filepath.Join(dir, fmt.Sprintf("zk%d", attempt))
	dataDir := filepath.Join(dir, "data")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, err
	}
	clientPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, ClientAddr: fmt.Sprintf("127.0.0.1:%d", clientPort), done: make(chan struct{})}
	cfg := fmt.Sprintf("tickTime=2000\ndataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\n", dataDir, clientPort)
	if opts.Admin {
		adminPort, err := FreePort()
		if err != nil {
			return nil, err
		}
		s.AdminAddr = fmt.Sprintf("127.0.0.1:%d", adminPort)
		cfg += fmt.Sprintf("admin.enableServer=true\nadmin.serverAddress=127.0.0.1\nadmin.serverPort=%d\n", adminPort)
	} else {
		cfg += "admin.enableServer=false\n"
	}
	if opts.Whitelist != "" {
		cfg += "4lw.commands.whitelist=" + opts.Whitelist + "\n"
	}
	if opts.MaxClientCnxns != 0 {
		cfg += fmt.Sprintf("maxClientCnxns=%d\n", opts.MaxClientCnxns)
	}
	s.ConfigPath = filepath.Join(dir, "zoo.cfg")
	if err := os.WriteFile(s.ConfigPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	s.cp = cp
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

// start runs the JVM on s's configuration and waits until it answers.
func (s *Server) start() error {
	logf, err := os.OpenFile(filepath.Join(s.Dir, "zookeeper.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	// Small, quick-starting JVM: the machine is shared and has 2 cores.
	s.cmd = exec.Command("java",
		"-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xss512k",
		"-Dzookeeper.jmx.log4j.disable=true", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
		"-cp", s.cp, "org.apache.zookeeper.server.ZooKeeperServerMain", s.ConfigPath)
	s.cmd.Dir = s.Dir
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	// Own process group so Stop kills the JVM and anything it forked; the
	// death signal stops it if the test binary dies without cleanup.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("start java: %w", err)
	}
	s.PID = s.cmd.Process.Pid
	done := make(chan struct{})
	s.done = done
	cmd := s.cmd
	go func() { cmd.Wait(); close(done) }()
	if err := s.waitReady(ReadyTimeout); err != nil {
		s.Stop()
		return fmt.Errorf("%w; log tail:\n%s", err, s.LogTail(2000))
	}
	return nil
}

// Signal sends sig to the server JVM (SIGSTOP hangs it, SIGCONT resumes).
func (s *Server) Signal(sig syscall.Signal) error { return syscall.Kill(s.PID, sig) }

// Kill kills the server with SIGKILL and waits until it is gone.
func (s *Server) Kill() { s.Stop() }

// Restart starts the server again on the same ports and data, after Kill,
// and waits until it answers.
func (s *Server) Restart() error {
	s.Stop()
	return s.start()
}

func (s *Server) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		reply, err := FourLetter(s.ClientAddr, "srvr", 2*time.Second)
		if err == nil && bytes.Contains(reply, []byte("Zookeeper version:")) {
			break
		}
		select {
		case <-s.done:
			return fmt.Errorf("ZooKeeper exited before answering srvr on %s", s.ClientAddr)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ZooKeeper did not answer srvr on %s within %v (last: %v)", s.ClientAddr, timeout, err)
		}
	}
	if s.AdminAddr == "" {
		return nil
	}
	for {
		c, err := net.DialTimeout("tcp", s.AdminAddr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("AdminServer not listening on %s within %v: %w", s.AdminAddr, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop kills the server's process group and waits for it. Safe to call twice.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	syscall.Kill(-s.PID, syscall.SIGKILL)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
	}
}

// LogTail returns the last n bytes of the server's log.
func (s *Server) LogTail(n int) string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "zookeeper.log"))
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// FreePort returns a currently free TCP port on 127.0.0.1.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// FourLetter sends word (exactly its bytes) and reads the reply to EOF. It
// is a test helper: production code uses package zk's Client.
func FourLetter(addr, word string, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	dl, _ := ctx.Deadline()
	c.SetDeadline(dl)
	if _, err := io.WriteString(c, word); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(c, 4<<20))
	if err != nil && !errors.Is(err, io.EOF) {
		return b, err
	}
	return b, nil
}
