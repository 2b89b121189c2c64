package storm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ChildFlag makes the bench binary run one storm and print its Result as
// JSON instead of benchmarking (see Spawn and ChildMain).
const ChildFlag = "storm-child"

// Spawn runs one storm in a child process: exe re-executed with ChildFlag.
// Cancelling ctx kills it; so does the harness dying (Pdeathsig).
func Spawn(ctx context.Context, exe string, shape Shape, workers int, d time.Duration) (Result, error) {
	// A storm that has not ended on its own well past d is stuck: kill it.
	ctx, cancel := context.WithTimeout(ctx, d+15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-"+ChildFlag, string(shape),
		"-workers", strconv.Itoa(workers), "-duration", d.String())
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return Result{}, fmt.Errorf("storm %s: %w (%s)", shape, err, strings.TrimSpace(stderr.String()))
	}
	var r Result
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		return Result{}, fmt.Errorf("storm %s: reading its result %q: %w", shape, stdout.String(), err)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return r, nil
}

// ChildMain runs the storm a child was asked for and writes its Result.
func ChildMain(shape string, workers int, d time.Duration, w io.Writer) error {
	sh, err := ParseShape(shape)
	if err != nil {
		return err
	}
	r, err := Run(sh, workers, d)
	if err != nil {
		return err
	}
	return json.NewEncoder(w).Encode(r)
}

// Executable is the binary to re-execute for a storm child.
func Executable() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding the bench binary to run the storm: %w", err)
	}
	return exe, nil
}
