package main

import (
	"context"
	"fmt"
	"io"

	"github.com/rstwatch/rstwatch/internal/doctor"
)

func runDoctor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("doctor", "rstwatch doctor: check that this host can trace TCP resets, one line per check, with the fix.\nExit status 0 only when `rstwatch trace` can run.", "  sudo rstwatch doctor\n", stderr)
	if err := parse(fs, args); err != nil {
		return err
	}
	checks := doctor.Run(ctx)
	for _, c := range checks {
		status := "ok  "
		switch {
		case !c.OK && c.Required:
			status = "FAIL"
		case !c.OK:
			status = "warn"
		}
		fmt.Fprintf(stdout, "%s  %-40s %s\n", status, c.Name, c.Detail)
		if !c.OK && c.Fix != "" {
			fmt.Fprintf(stdout, "      %-40s fix: %s\n", "", c.Fix)
		}
	}
	if !doctor.OK(checks) {
		return &exitError{1, fmt.Errorf("this host cannot trace yet: fix the FAIL lines above")}
	}
	fmt.Fprintln(stdout, "rstwatch trace can run here.")
	return nil
}
