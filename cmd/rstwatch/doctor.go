package main

import (
	"context"
	"fmt"
	"io"

	"github.com/rstwatch/rstwatch/internal/doctor"
)

const doctorAbout = `rstwatch doctor: check that this host can trace TCP resets, one line per check, with
the fix. Takes no flags. Exit status 0 only when 'rstwatch trace' can run; run it as the
user (or with the capabilities) that rstwatch will run with.`

func runDoctor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("doctor", doctorAbout, "  sudo rstwatch doctor\n", stdout)
	if err := c.parse(args); err != nil {
		return err
	}
	if err := c.noArgs(); err != nil {
		return err
	}
	checks := doctor.Run(ctx)
	for _, ch := range checks {
		fmt.Fprintf(stdout, "%-4s  %-40s %s\n", ch.Status, ch.Name, ch.Detail)
		if ch.Status != doctor.Pass && ch.Fix != "" {
			fmt.Fprintf(stdout, "      %-40s fix: %s\n", "", ch.Fix)
		}
	}
	if !doctor.OK(checks) {
		return &exitError{1, fmt.Errorf("this host cannot trace yet: fix the FAIL lines above")}
	}
	fmt.Fprintln(stdout, "rstwatch trace can run here.")
	return nil
}
