package tracer

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The scenario tests need resets made by separate processes with names of
// their own, so that task and owner can be told apart. The test binary
// re-executes itself as an "agent" (through a symlink whose name becomes the
// process's comm) and takes one command per line on stdin.

const agentEnv = "RSTWATCH_TEST_AGENT"

func TestMain(m *testing.M) {
	if os.Getenv(agentEnv) == "1" {
		runAgent()
		return
	}
	os.Exit(m.Run())
}

func runAgent() {
	in := bufio.NewScanner(os.Stdin)
	var (
		ln   net.Listener
		conn *net.TCPConn
	)
	reply := func(format string, args ...any) { fmt.Printf(format+"\n", args...) }
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		var err error
		switch f[0] {
		case "pid":
			reply("ok %d", os.Getpid())
			continue
		case "listen":
			ln, err = net.Listen("tcp", f[1])
			if err == nil {
				reply("ok %s", ln.Addr())
				continue
			}
		case "accept":
			var c net.Conn
			c, err = ln.Accept()
			if err == nil {
				conn = c.(*net.TCPConn)
				reply("ok %s %s", c.LocalAddr(), c.RemoteAddr())
				continue
			}
		case "connect":
			var c net.Conn
			c, err = net.DialTimeout("tcp", f[1], 3*time.Second)
			if err == nil {
				conn = c.(*net.TCPConn)
				reply("ok %s", c.LocalAddr())
				continue
			}
			if c == nil {
				// A refused connect is the scenario, not a failure.
				reply("refused %v", err)
				continue
			}
		case "write":
			n, _ := strconv.Atoi(f[1])
			_, err = conn.Write(make([]byte, n))
		case "read":
			n, _ := strconv.Atoi(f[1])
			buf := make([]byte, n)
			_, err = conn.Read(buf)
		case "linger0":
			err = conn.SetLinger(0)
		case "finwait2":
			// TCP_LINGER2 above TIME_WAIT's 60 s: after close() the
			// socket stays a full (orphaned) socket in FIN_WAIT2
			// instead of becoming a timewait socket.
			var raw syscall.RawConn
			if raw, err = conn.SyscallConn(); err == nil {
				cerr := raw.Control(func(fd uintptr) {
					err = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_LINGER2, 120)
				})
				if err == nil {
					err = cerr
				}
			}
		case "shutdown":
			// Shut down both ways without closing, as ZooKeeper's Java
			// client and server do before close().
			if err = conn.CloseRead(); err == nil {
				err = conn.CloseWrite()
			}
		case "close":
			err = conn.Close()
		case "closelistener":
			err = ln.Close()
		case "exit":
			reply("ok")
			os.Exit(0)
		default:
			err = fmt.Errorf("unknown command %q", f[0])
		}
		if err != nil {
			reply("err %v", err)
		} else {
			reply("ok")
		}
	}
}

// agent is a running agent process.
type agent struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	in   *bufio.Writer
	out  *bufio.Scanner
	pid  uint32
}

// startAgent runs the test binary as an agent named name (its comm), inside
// network namespace ns when ns is not empty.
func startAgent(t *testing.T, name, ns string) *agent {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), name)
	if err := os.Symlink(self, link); err != nil {
		t.Fatal(err)
	}
	var cmd *exec.Cmd
	if ns != "" {
		cmd = exec.Command("ip", "netns", "exec", ns, link)
	} else {
		cmd = exec.Command(link)
	}
	cmd.Env = append(os.Environ(), agentEnv+"=1")
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a := &agent{t: t, name: name, cmd: cmd, in: bufio.NewWriter(stdin), out: bufio.NewScanner(stdout)}
	t.Cleanup(a.kill)
	pid, err := strconv.Atoi(a.do("pid")[0])
	if err != nil {
		t.Fatal(err)
	}
	a.pid = uint32(pid)
	return a
}

// do sends one command and returns the fields of an "ok" reply.
func (a *agent) do(format string, args ...any) []string {
	a.t.Helper()
	f, status := a.try(format, args...)
	if status != "ok" {
		a.t.Fatalf("agent %s: %q: %s %v", a.name, fmt.Sprintf(format, args...), status, f)
	}
	return f
}

func (a *agent) try(format string, args ...any) ([]string, string) {
	a.t.Helper()
	fmt.Fprintf(a.in, format+"\n", args...)
	if err := a.in.Flush(); err != nil {
		a.t.Fatalf("agent %s: %v", a.name, err)
	}
	if !a.out.Scan() {
		a.t.Fatalf("agent %s: no reply to %q", a.name, fmt.Sprintf(format, args...))
	}
	f := strings.Fields(a.out.Text())
	return f[1:], f[0]
}

// exit makes the agent exit and waits until it has.
func (a *agent) exit() {
	a.t.Helper()
	a.do("exit")
	_ = a.cmd.Wait()
}

func (a *agent) kill() {
	if a.cmd.ProcessState == nil {
		_ = a.cmd.Process.Kill()
		_ = a.cmd.Wait()
	}
}
