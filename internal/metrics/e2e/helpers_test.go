// Package e2e runs the built `rstwatch serve` against the real kernel and
// a real Prometheus. It needs root; see README.md "Always on".
package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rstwatch/rstwatch/internal/testbin"
	"github.com/rstwatch/rstwatch/internal/testenv"
)

// freeAddr returns a loopback address nobody listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// syncBuffer is a bytes.Buffer safe to write from exec's copier goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type serveProc struct {
	cmd    *exec.Cmd
	addr   string
	stderr *syncBuffer
	done   chan error
}

// startServe runs `rstwatch serve` and waits until it has attached its
// programs and serves /metrics. Cleanup kills it if the test did not stop it.
func startServe(t *testing.T, args ...string) *serveProc {
	t.Helper()
	testenv.RequireBPF(t)
	bin := testbin.Rstwatch(t)
	ready := filepath.Join(t.TempDir(), "ready")
	sp := &serveProc{addr: freeAddr(t), stderr: &syncBuffer{}, done: make(chan error, 1)}
	args = append([]string{"serve", "--metrics-addr", sp.addr, "--ready-file", ready}, args...)
	sp.cmd = exec.Command(bin, args...)
	sp.cmd.Stderr = sp.stderr
	if err := sp.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { sp.done <- sp.cmd.Wait() }()
	t.Cleanup(func() {
		if sp.cmd.ProcessState == nil {
			_ = sp.cmd.Process.Kill()
			<-sp.done
		}
		if t.Failed() {
			t.Logf("rstwatch serve stderr:\n%s", sp.stderr)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(ready); err == nil {
			return sp
		}
		select {
		case err := <-sp.done:
			sp.done <- err
			t.Fatalf("rstwatch serve exited before it was ready: %v\n%s", err, sp.stderr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("rstwatch serve not ready after 30 s\n%s", sp.stderr)
		}
	}
}

// stop sends SIGTERM and returns how long the process took to exit.
func (sp *serveProc) stop(t *testing.T, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	if err := sp.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-sp.done:
		if err != nil {
			t.Errorf("rstwatch serve exited with %v after SIGTERM\n%s", err, sp.stderr)
		}
		return time.Since(start)
	case <-time.After(limit):
		t.Fatalf("rstwatch serve still running %v after SIGTERM\n%s", limit, sp.stderr)
	}
	return 0
}

func httpGet(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), err
}

func (sp *serveProc) metrics(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := httpGet(ctx, "http://"+sp.addr+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// refuse connects to 127.0.0.1:port, which nobody listens on: the kernel
// answers the SYN with a RST (sent), and the connect gets it (received).
func refuse(port int) error {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
	if err == nil {
		c.Close()
		return errors.New("port is open")
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return err
	}
	return nil
}

// closedPort returns a loopback port with no listener.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// setComm renames this process (its thread group leader, which is what the
// kernel reads as the owner's comm) and restores the name at cleanup.
func setComm(t *testing.T, name string) {
	t.Helper()
	old, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("/proc/self/comm", []byte(name), 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.WriteFile("/proc/self/comm", bytes.TrimSpace(old), 0) })
}

// series returns the sample lines of one metric in a /metrics body.
func series(body, name string) []string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, name+"{") || strings.HasPrefix(l, name+" ") {
			out = append(out, l)
		}
	}
	return out
}

func TestMain(m *testing.M) { os.Exit(testbin.Main(m)) }
