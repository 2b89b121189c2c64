package main

import (
	"context"
	"errors"
	"io"
	"log/slog"

	"github.com/spf13/pflag"

	"github.com/rstwatch/rstwatch/event"
	"github.com/rstwatch/rstwatch/pipeline"
)

// zkFlags select the ZooKeeper endpoints whose resets are explained.
type zkFlags struct{}

func (z *zkFlags) register(fs *pflag.FlagSet) {}

type zkSetup struct {
	enricher pipeline.Enricher
	skip     func(*event.Event) bool
}

func (z *zkFlags) setup(ctx context.Context, log *slog.Logger) (zkSetup, error) {
	return zkSetup{}, nil
}

func runZK(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("zk: not implemented yet")
}
