//go:build linux

// Command init is PID 1 of the throwaway VM that runs rstwatch's kernel
// tests. It prepares just enough of a system for BPF tests (pseudo
// filesystems, loopback), runs every test binary shipped in /tests and
// reports one marker line per binary on the serial console:
//
//	RSTWATCH-KTEST <name> PASS|FAIL exit=<n>
//
// kernels/run.sh parses those lines, so their format is an interface.
//
// Image layout (written by run.sh):
//
//	/init                  this program
//	/tests/<name>/<name>.test   test binary, run with cwd /tests/<name>
//	/tests/<name>/testdata      optional, copied from the package
//	/etc/ktest.env         KEY=VALUE lines added to the tests' environment
//	/etc/ktest.args        extra test binary arguments, one per line
//	/etc/ktest.modules     kernel modules to load first, in order
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

const marker = "RSTWATCH-KTEST"

func main() {
	// Any way out of main must power the VM off: if PID 1 exits the kernel
	// panics, and although panic=-1 with qemu -no-reboot also ends the VM,
	// a clean power-off keeps the console free of a misleading panic dump.
	defer powerOff()
	defer func() {
		if r := recover(); r != nil {
			fmt.Printf("%s-ERROR init panic: %v\n", marker, r)
		}
	}()

	setupMounts()
	loadModules()
	// Test helpers such as ip(8) are shipped with their libraries under
	// their host paths.
	os.Setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	if err := loopbackUp(); err != nil {
		fmt.Printf("%s-ERROR bringing up lo: %v\n", marker, err)
	}
	// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK; raise it so
	// older guest kernels behave like the host.
	inf := &unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}
	if err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, inf); err != nil {
		fmt.Printf("%s-ERROR setrlimit memlock: %v\n", marker, err)
	}

	// run.sh boots with rstwatch.probe=1 only to learn whether KVM works
	// here; reaching this point is the answer.
	if cmdline, _ := os.ReadFile("/proc/cmdline"); strings.Contains(string(cmdline), "rstwatch.probe=1") {
		fmt.Printf("%s-PROBE-OK\n", marker)
		return
	}

	var uts unix.Utsname
	_ = unix.Uname(&uts)
	fmt.Printf("%s-BEGIN kernel=%s\n", marker, unix.ByteSliceToString(uts.Release[:]))

	env := append(os.Environ(), readLines("/etc/ktest.env")...)
	args := append([]string{"-test.v", "-test.count=1"}, readLines("/etc/ktest.args")...)

	dirs, _ := filepath.Glob("/tests/*")
	sort.Strings(dirs)
	for _, dir := range dirs {
		name := filepath.Base(dir)
		bin := filepath.Join(dir, name+".test")
		if _, err := os.Stat(bin); err != nil {
			continue
		}
		code := runTest(bin, dir, args, env)
		result := "PASS"
		if code != 0 {
			result = "FAIL"
		}
		fmt.Printf("%s %s %s exit=%d\n", marker, name, result, code)
	}
	fmt.Printf("%s-DONE\n", marker)
}

func runTest(bin, dir string, args, env []string) int {
	// The test binary has its own -test.timeout; this outer limit only
	// catches a binary that hangs outside the testing framework.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stdout
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if code := ee.ExitCode(); code > 0 {
			return code
		}
		return 128 // killed by a signal
	default:
		fmt.Printf("%s-ERROR running %s: %v\n", marker, bin, err)
		return 127
	}
}

func setupMounts() {
	mounts := []struct {
		fstype, target, data string
	}{
		{"proc", "/proc", ""},
		{"sysfs", "/sys", ""},
		{"devtmpfs", "/dev", ""},
		{"tmpfs", "/tmp", "mode=1777"},
		{"tmpfs", "/run", "mode=0755"},
		{"tracefs", "/sys/kernel/tracing", ""},
		{"debugfs", "/sys/kernel/debug", ""},
		{"bpf", "/sys/fs/bpf", "mode=0700"},
		{"cgroup2", "/sys/fs/cgroup", ""},
	}
	for _, m := range mounts {
		if err := os.MkdirAll(m.target, 0o755); err != nil {
			fmt.Printf("%s-ERROR mkdir %s: %v\n", marker, m.target, err)
			continue
		}
		if err := unix.Mount(m.fstype, m.target, m.fstype, 0, m.data); err != nil {
			fmt.Printf("%s-ERROR mount %s on %s: %v\n", marker, m.fstype, m.target, err)
		}
	}
	_ = os.Symlink("/proc/self/fd", "/dev/fd")
}

// loopbackUp sets IFF_UP on lo; the kernel then assigns 127.0.0.1/8 and ::1
// by itself, so no address configuration is needed.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCGIFFLAGS: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCSIFFLAGS: %w", err)
	}
	return nil
}

func loadModules() {
	for _, mod := range readLines("/etc/ktest.modules") {
		f, err := os.Open(mod)
		if err != nil {
			fmt.Printf("%s-ERROR module %s: %v\n", marker, mod, err)
			continue
		}
		flags := 0
		if !strings.HasSuffix(mod, ".ko") {
			// .ko.xz and friends: the kernel decompresses them itself
			// (CONFIG_MODULE_DECOMPRESS), which saves shipping xz.
			flags = unix.MODULE_INIT_COMPRESSED_FILE
		}
		err = unix.FinitModule(int(f.Fd()), "", flags)
		f.Close()
		if err != nil && !errors.Is(err, unix.EEXIST) {
			fmt.Printf("%s-ERROR module %s: %v\n", marker, mod, err)
		}
	}
}

func readLines(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		if l := strings.TrimSpace(s.Text()); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

func powerOff() {
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		fmt.Printf("%s-ERROR power off: %v\n", marker, err)
	}
	// Reboot only returns on failure. Returning lets PID 1 exit; the
	// resulting panic reboots, which qemu -no-reboot turns into an exit.
}
