// Command rstwatch tells which process sends or receives every TCP reset on
// this host, why the kernel sent it, and whether a ZooKeeper version
// explains it. The command only parses flags and calls the packages that do
// the work.
//
// Every command runs in the same order: parse and check the command line
// (a usage error exits 2 with one sentence), then the setup that can fail
// (privileges, BTF, tracefs, loading: exit 1 with one sentence), and only
// then ZooKeeper discovery and probing. Log lines written before setup
// succeeds are held back, so no informational line ever stands in front
// of a fatal sentence.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/rstwatch/rstwatch/tracer"
)

const summary = `rstwatch: every TCP reset on this host, with the process that sent or received it,
the kernel's reason, and the ZooKeeper version that explains it.`

const commands = `Usage:
  rstwatch [trace] [flags]      stream resets until Ctrl-C, then a summary (the default command)
  rstwatch serve [flags]        count resets in the kernel, always on, for Prometheus
  rstwatch doctor               check that this host can trace, and how to fix what is missing
  rstwatch zk probe host:port…  ask ZooKeeper servers their version and state (no root needed)
  rstwatch version              version, commit, and the kernel features rstwatch uses here
  rstwatch help [COMMAND]       this text, or a command's flags
`

// exitError carries a process exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	// SIGHUP stops too: rstwatch reloads nothing, and a hung-up terminal
	// must still get its summary flushed and its programs detached.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		// The first signal stops cleanly; a second one, if stopping
		// hangs, kills as the default action does.
		<-ctx.Done()
		stop()
	}()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, errHelpShown) {
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
	cmd, implicit := "trace", true
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args, implicit = args[0], args[1:], false
	}
	if implicit && len(args) > 0 && (args[0] == "--version" || args[0] == "-V") {
		cmd, args = "version", args[1:]
	}
	switch cmd {
	case "trace":
		return runTrace(ctx, args, stdout, stderr, implicit)
	case "serve":
		return runServe(ctx, args, stdout, stderr)
	case "doctor":
		return runDoctor(ctx, args, stdout, stderr)
	case "zk":
		return runZK(ctx, args, stdout, stderr)
	case "version":
		return runVersion(args, stdout, stderr)
	case "help":
		if len(args) == 0 {
			return runTrace(ctx, []string{"--help"}, stdout, stderr, true)
		}
		if len(args) == 1 && args[0] != "help" && isCommand(args[0]) {
			return run(ctx, []string{args[0], "--help"}, stdout, stderr)
		}
		return usageError("help %s: no such command; the commands are %s", strings.Join(args, " "), orList(commandNames))
	}
	hint := ""
	if s := closest(cmd, commandNames); s != "" {
		hint = fmt.Sprintf(" (did you mean %s?)", s)
	} else if _, err := strconv.ParseUint(cmd, 10, 16); err == nil {
		hint = fmt.Sprintf(" (to trace a port: --port %s)", cmd)
	}
	return usageError("unknown command %q%s; 'rstwatch --help' lists the commands", cmd, hint)
}

var commandNames = []string{"trace", "serve", "doctor", "zk", "version", "help"}

func isCommand(s string) bool {
	for _, c := range commandNames {
		if s == c {
			return true
		}
	}
	return false
}

// closest returns the word within two edits of s, if any.
func closest(s string, words []string) string {
	best, bestDist := "", 3
	for _, w := range words {
		if d := editDistance(s, w); d < bestDist {
			best, bestDist = w, d
		}
	}
	return best
}

// command is one command's flag set and its help text. --help and -h print
// the help on stdout (it is what was asked for: `| less` must work) and exit
// 0; every other parse error is one sentence, exit 2.
type command struct {
	*pflag.FlagSet
	name     string
	about    string // what the command does
	examples string
	stdout   io.Writer
	// top: the help of `rstwatch --help`, which is trace's flags under the
	// list of commands.
	top bool
}

func newCommand(name, about, examples string, stdout io.Writer) *command {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard) // parse errors are returned, worded by flagError
	fs.SortFlags = false
	fs.Usage = func() {}
	return &command{FlagSet: fs, name: name, about: about, examples: examples, stdout: stdout}
}

// errHelpShown ends a command whose --help was answered: exit 0.
var errHelpShown = errors.New("help shown")

// parse parses args; errHelpShown means --help was asked and answered.
func (c *command) parse(args []string) error {
	if err := c.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			c.help(c.stdout)
			return errHelpShown
		}
		return flagError(c.FlagSet, c.name, err)
	}
	return nil
}

func (c *command) help(w io.Writer) {
	if c.top {
		fmt.Fprintf(w, "%s\n\n%s\nFlags of trace (the default command):\n%s", summary, commands, c.FlagUsages())
		fmt.Fprintf(w, "\nExamples:\n%s\nRun 'rstwatch COMMAND --help' for the flags of serve, doctor and zk.\n", c.examples)
		return
	}
	fmt.Fprintf(w, "%s\n", c.about)
	if u := c.FlagUsages(); u != "" {
		fmt.Fprintf(w, "\nFlags:\n%s", u)
	}
	if c.examples != "" {
		fmt.Fprintf(w, "\nExamples:\n%s", c.examples)
	}
}

// newFlags and parse serve commands that use a bare flag set (zk probe):
// --help prints about, the flags and examples on help, and exits 0; other
// parse errors are worded like every command's.
func newFlags(name, about, examples string, help io.Writer) *pflag.FlagSet {
	c := newCommand(name, about, examples, help)
	c.Usage = func() { c.help(help) }
	return c.FlagSet
}

func parse(fs *pflag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return errHelpShown
		}
		return flagError(fs, fs.Name(), err)
	}
	return nil
}

// noArgs is the usage error for positional arguments a command does not take.
func (c *command) noArgs() error {
	if c.NArg() == 0 {
		return nil
	}
	return usageError("%s takes no arguments, got %q; 'rstwatch %s --help' lists its flags", c.name, strings.Join(c.Args(), " "), c.name)
}

// held is the log of a command: records are held back until the setup has
// succeeded (release) or dropped when it failed (unless --debug), so that a
// fatal sentence is never preceded by informational lines.
type held struct {
	*slog.Logger
	h *holdHandler
}

func newLogger(w io.Writer, debug bool, format string) held {
	level := slog.LevelInfo
	if debug {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	hh := newHoldHandler(h)
	return held{slog.New(hh), hh}
}

// setupFailed ends a failed setup: the held log is dropped (shown with
// --debug, before the sentence), and err becomes one sentence with exit 1
// (the kernel's own words after it with --debug).
func (l held) setupFailed(err error, debug bool, stderr io.Writer) error {
	if debug {
		l.h.release()
	} else {
		l.h.drop()
	}
	var se *tracer.SetupError
	if errors.As(err, &se) {
		if debug && se.Detail != nil {
			fmt.Fprintf(stderr, "%+v\n", se.Detail)
		}
		return &exitError{1, errors.New(se.Msg)}
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	return &exitError{1, err}
}

// setupDone releases the held log.
func (l held) setupDone() { l.h.release() }
