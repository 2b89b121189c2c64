// Command rstwatch tells which process sends or receives every TCP reset on
// this host, why the kernel sent it, and whether a ZooKeeper version
// explains it. The command only parses flags and calls the packages that do
// the work.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/rstwatch/rstwatch/tracer"
)

const usage = `rstwatch: every TCP reset on this host, with the process, the kernel's reason,
and the ZooKeeper version that explains it.

Usage:
  rstwatch [trace] [flags]     stream resets (the default command)
  rstwatch doctor              check that this host can trace, and how to fix it
  rstwatch zk probe host:port  ask ZooKeeper servers their version and state
  rstwatch serve [flags]       run always-on, with Prometheus metrics

Run 'rstwatch COMMAND --help' for a command's flags.
`

// exitError carries a process exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func main() {
	// SIGHUP stops too: rstwatch reloads nothing, and a hung-up terminal
	// must still get its summary flushed and its programs detached.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, pflag.ErrHelp):
		os.Exit(0)
	default:
		code := 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		fmt.Fprintf(os.Stderr, "rstwatch: %v\n", err)
		os.Exit(code)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := "trace"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "trace":
		return runTrace(ctx, args, stdout, stderr)
	case "doctor":
		return runDoctor(ctx, args, stdout, stderr)
	case "zk":
		return runZK(ctx, args, stdout, stderr)
	case "serve":
		return runServe(ctx, args, stdout, stderr)
	case "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return &exitError{2, fmt.Errorf("unknown command %q", cmd)}
}

// newFlags makes a command's flag set; --help prints its usage and examples.
func newFlags(name, summary, examples string, stderr io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.SortFlags = false
	fs.Usage = func() {
		fmt.Fprintf(stderr, "%s\n\nFlags:\n%s", summary, fs.FlagUsages())
		if examples != "" {
			fmt.Fprintf(stderr, "\nExamples:\n%s", examples)
		}
	}
	return fs
}

func parse(fs *pflag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return &exitError{2, err}
	}
	return nil
}

func newLogger(w io.Writer, debug bool, format string) *slog.Logger {
	level := slog.LevelInfo
	if debug {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// setupFailure turns a load/attach failure into one sentence (and, with
// --debug, the kernel's own words).
func setupFailure(err error, debug bool, stderr io.Writer) error {
	var se *tracer.SetupError
	if errors.As(err, &se) {
		if debug && se.Detail != nil {
			fmt.Fprintf(stderr, "%+v\n", se.Detail)
		}
		return &exitError{1, errors.New(se.Msg)}
	}
	return err
}
