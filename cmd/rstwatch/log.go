package main

import (
	"context"
	"log/slog"
	"sync"
)

// holdHandler keeps records back until release (then writes them, and every
// later one, through next) or drop (then discards them, and writes every
// later one).
type holdHandler struct {
	next  slog.Handler
	state *holdState
}

type holdState struct {
	mu      sync.Mutex
	holding bool
	records []heldRecord
}

type heldRecord struct {
	h slog.Handler // the handler with the attributes of the logger used
	r slog.Record
}

func newHoldHandler(next slog.Handler) *holdHandler {
	return &holdHandler{next: next, state: &holdState{holding: true}}
}

func (h *holdHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *holdHandler) Handle(ctx context.Context, r slog.Record) error {
	s := h.state
	s.mu.Lock()
	if s.holding {
		s.records = append(s.records, heldRecord{h.next, r.Clone()})
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	return h.next.Handle(ctx, r)
}

func (h *holdHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &holdHandler{next: h.next.WithAttrs(attrs), state: h.state}
}

func (h *holdHandler) WithGroup(name string) slog.Handler {
	return &holdHandler{next: h.next.WithGroup(name), state: h.state}
}

func (h *holdHandler) release() { h.end(true) }
func (h *holdHandler) drop()    { h.end(false) }

func (h *holdHandler) end(write bool) {
	s := h.state
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.holding {
		return
	}
	if write {
		for _, hr := range s.records {
			_ = hr.h.Handle(context.Background(), hr.r)
		}
	}
	s.holding, s.records = false, nil
}
