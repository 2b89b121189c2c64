// Package churn is rstwatch-bench's connection-churn workload: a real web
// server (Debian's nginx-light, one worker answering 204) and a real client
// (wrk) on 127.0.0.1, one connection per request ("Connection: close") and
// no resets. It measures what every ordinary connection on a host pays for
// a tracer being attached.
package churn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The programs and how to get them.
const (
	NginxBin = "nginx"
	WrkBin   = "wrk"
	Install  = "apt-get install nginx-light wrk"
)

// Connections is wrk's -c: connections kept busy at once.
const Connections = 32

// Missing says why the workload cannot run here, "" when it can.
func Missing() string {
	var missing []string
	for _, b := range []string{NginxBin, WrkBin} {
		if _, err := exec.LookPath(b); err != nil {
			missing = append(missing, b)
		}
	}
	if len(missing) == 0 {
		return ""
	}
	return fmt.Sprintf("%s not installed (%s)", strings.Join(missing, " and "), Install)
}

// config is the whole nginx configuration: its own prefix, one worker, no
// access log, 204 for everything, on 127.0.0.1 only.
const config = `daemon off;
master_process on;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path %[1]s/tmp;
	proxy_temp_path %[1]s/tmp;
	fastcgi_temp_path %[1]s/tmp;
	uwsgi_temp_path %[1]s/tmp;
	scgi_temp_path %[1]s/tmp;
	server {
		listen 127.0.0.1:%[2]d;
		location / { return 204; }
	}
}
`

// Server is a running nginx.
type Server struct {
	URL    string
	cmd    *exec.Cmd
	stderr bytes.Buffer
	exited chan struct{}
}

// Start runs nginx with its configuration and files in dir, on a free
// loopback port, and waits until it accepts connections.
func Start(ctx context.Context, dir string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		return nil, fmt.Errorf("nginx directory: %w", err)
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, config, dir, port), 0o644); err != nil {
		return nil, fmt.Errorf("nginx configuration: %w", err)
	}
	s := &Server{URL: fmt.Sprintf("http://127.0.0.1:%d/", port), exited: make(chan struct{})}
	s.cmd = exec.Command(NginxBin, "-p", dir, "-c", conf)
	s.cmd.Stderr = &s.stderr
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting nginx: %w", err)
	}
	go func() { s.cmd.Wait(); close(s.exited) }()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return s, nil
		}
		select {
		case <-s.exited:
			return nil, fmt.Errorf("nginx exited before listening: %s", strings.TrimSpace(s.stderr.String()))
		case <-ctx.Done():
			s.Stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("nginx not listening on %s within 10 s: %s", addr, strings.TrimSpace(s.stderr.String()))
		}
	}
}

// Stop ends nginx (SIGTERM: fast shutdown), killing it if it lingers.
func (s *Server) Stop() error {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		return nil
	case <-time.After(5 * time.Second):
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
		return errors.New("nginx did not stop within 5 s of SIGTERM: killed")
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port for nginx: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Result is one wrk run.
type Result struct {
	Requests uint64        `json:"requests"`
	Elapsed  time.Duration `json:"elapsed_ns"`
	// Errors are wrk's socket errors and non-2xx answers; a churn without
	// resets has none.
	Errors uint64 `json:"errors,omitempty"`
	// CPU is wrk's user+sys time.
	CPU time.Duration `json:"cpu_ns,omitempty"`
}

// Rate is requests (= connections) per second.
func (r Result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// Load runs wrk against url for d: one thread, Connections connections,
// each closed after its request.
func Load(ctx context.Context, url string, d time.Duration) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, d+15*time.Second)
	defer cancel()
	secs := max(1, int(d.Round(time.Second)/time.Second))
	cmd := exec.CommandContext(ctx, WrkBin, "-t1", "-c"+strconv.Itoa(Connections), "-d"+strconv.Itoa(secs)+"s",
		"-H", "Connection: close", url)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return Result{}, fmt.Errorf("wrk: %w (%s)", err, strings.TrimSpace(stderr.String()))
	}
	r, err := ParseWrk(out.String())
	if err != nil {
		return r, err
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return r, nil
}

var (
	reTotal  = regexp.MustCompile(`(\d+) requests in ([0-9.]+)(us|ms|s|m)\b`)
	reSocket = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	reNon2xx = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
)

// ParseWrk reads wrk's summary: "N requests in 4.00s", and the error lines
// it prints only when there were errors.
func ParseWrk(out string) (Result, error) {
	m := reTotal.FindStringSubmatch(out)
	if m == nil {
		return Result{}, fmt.Errorf("wrk printed no request count: %q", out)
	}
	var r Result
	r.Requests, _ = strconv.ParseUint(m[1], 10, 64)
	d, err := time.ParseDuration(m[2] + m[3])
	if err != nil {
		return Result{}, fmt.Errorf("wrk's duration %q: %w", m[2]+m[3], err)
	}
	r.Elapsed = d
	if m := reSocket.FindStringSubmatch(out); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.ParseUint(s, 10, 64)
			r.Errors += n
		}
	}
	if m := reNon2xx.FindStringSubmatch(out); m != nil {
		n, _ := strconv.ParseUint(m[1], 10, 64)
		r.Errors += n
	}
	return r, nil
}
