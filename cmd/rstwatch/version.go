package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/rstwatch/rstwatch/internal/workload"
	"github.com/rstwatch/rstwatch/tracer"
)

// Set with -ldflags "-X main.version=… -X main.commit=…" (make does);
// otherwise taken from the build information Go records.
var version, commit string

const versionAbout = `rstwatch version: the version and commit of this binary, and the kernel features
rstwatch uses, as probed on this host (run it as root to probe them all).`

func runVersion(args []string, stdout, stderr io.Writer) error {
	c := newCommand("version", versionAbout, "", stdout)
	if err := c.parse(args); err != nil {
		return err
	}
	if err := c.noArgs(); err != nil {
		return err
	}
	v, rev, goVersion := buildVersion()
	fmt.Fprintf(stdout, "rstwatch %s\ncommit   %s\nbuilt    with %s for %s/%s\n", v, rev, goVersion, runtime.GOOS, runtime.GOARCH)
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		fmt.Fprintf(stdout, "kernel   %s\n", unix.ByteSliceToString(u.Release[:]))
	}
	p := tracer.CheckPrivileges()
	who := p.Detail
	if !p.OK {
		who = fmt.Sprintf("uid %d, which lacks %s", os.Geteuid(), strings.Join(p.Missing, ", "))
	}
	fmt.Fprintf(stdout, "\nkernel features rstwatch uses, probed as %s:\n", who)
	for _, f := range tracer.Features() {
		fmt.Fprintf(stdout, "  %-7s  %-38s %s\n", f.State, f.Name, f.Detail)
	}
	state, detail := "yes", ""
	if root, err := workload.Probe(); err != nil {
		state, detail = "no", err.Error()
	} else {
		detail = "mounted at " + root + ": owners' units, containers and pods are named"
	}
	fmt.Fprintf(stdout, "  %-7s  %-38s %s\n", state, "cgroup v2 hierarchy", detail)
	return nil
}

// buildVersion returns the version, the commit and the Go version.
func buildVersion() (v, rev, goVersion string) {
	v, rev, goVersion = version, commit, runtime.Version()
	if bi, ok := debug.ReadBuildInfo(); ok {
		vcs := map[string]string{}
		for _, s := range bi.Settings {
			vcs[s.Key] = s.Value
		}
		if v == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		if rev == "" && vcs["vcs.revision"] != "" {
			rev = vcs["vcs.revision"]
			if vcs["vcs.modified"] == "true" {
				rev += " (with uncommitted changes)"
			}
		}
	}
	if v == "" {
		v = "(development build)"
	}
	if rev == "" {
		rev = "unknown: built without version control information ('make build' records it)"
	}
	return v, rev, goVersion
}
