package pipeline

import (
	"context"

	"github.com/rstwatch/rstwatch/internal/event"
)

// Chain runs enrichers in order (nil ones are skipped); those that observe
// connections (ConnectObserver) hear of each.
type Chain []Enricher

func (c Chain) Enrich(ctx context.Context, e *event.Event) {
	for _, x := range c {
		if x != nil {
			x.Enrich(ctx, e)
		}
	}
}

func (c Chain) Connected(conn *event.Connect) {
	for _, x := range c {
		if o, ok := x.(ConnectObserver); ok {
			o.Connected(conn)
		}
	}
}
