package output

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/rstwatch/rstwatch/internal/event"
	"github.com/rstwatch/rstwatch/internal/workload"
)

// Table writes one aligned line per reset, for a terminal 80 to 160 columns
// wide (IPv6 endpoints widen their columns; the WORKLOAD column adds 21),
// then the summary.
type Table struct {
	// Workload adds the WORKLOAD column: the owner's pod, else container,
	// else systemd unit (workload.Name). Set it before the first event,
	// where cgroups can be named.
	Workload   bool
	w          *bufio.Writer
	wroteTitle bool
}

func NewTable(w io.Writer) *Table { return &Table{w: bufio.NewWriterSize(w, 16<<10)} }

const (
	tableFormat    = "%-12s %-4s %-21s %-21s %-11s %-19s %s\n"
	workloadFormat = "%-12s %-4s %-21s %-21s %-11s %-19s %-20s %s\n"
)

func (t *Table) Flush() error { return t.w.Flush() }

func (t *Table) Event(e *event.Event) error {
	if !t.wroteTitle {
		if t.Workload {
			fmt.Fprintf(t.w, workloadFormat, "TIME", "DIR", "LOCAL", "REMOTE", "STATE", "REASON", "WORKLOAD", "OWNER [TASK IF OTHER] ZK")
		} else {
			fmt.Fprintf(t.w, tableFormat, "TIME", "DIR", "LOCAL", "REMOTE", "STATE", "REASON", "OWNER [TASK IF OTHER] ZK")
		}
		t.wroteTitle = true
	}
	dir := "send"
	if e.Direction == event.Receive {
		dir = "recv"
	}
	state := e.State
	if state == "" {
		state = "-"
	}
	if t.Workload {
		var name string
		if e.Owner != nil {
			name = workload.Name(e.Owner.Workload)
		}
		if name == "" {
			name = "-"
		}
		_, err := fmt.Fprintf(t.w, workloadFormat, e.Time.Local().Format("15:04:05.000"), dir,
			e.Local.String(), e.Remote.String(), state, e.Reason, printable(name), ownerCell(e)+zkCell(e)+senderCell(e))
		return err
	}
	_, err := fmt.Fprintf(t.w, tableFormat, e.Time.Local().Format("15:04:05.000"), dir,
		e.Local.String(), e.Remote.String(), state, e.Reason, ownerCell(e)+zkCell(e)+senderCell(e))
	return err
}

// printable keeps a process-chosen name from driving the terminal: control
// characters and invalid UTF-8 become '?'.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
}

// ownerCell names the owner, marks an exited one, and names the task that
// ran when it is not the owner (softirq, timer, the peer on loopback).
func ownerCell(e *event.Event) string {
	var s string
	if o := e.Owner; o != nil {
		s = printable(OwnerKey(o))
		if !o.Alive {
			s += " (exited)"
		}
		if o.Source == event.OwnerListener {
			s += " (listener)"
		}
	} else {
		s = "-"
	}
	if !e.TaskIsOwner() {
		s += " [" + strconv.FormatUint(uint64(e.Task.PID), 10) + "/" + printable(e.Task.Comm)
		if name := workload.Name(e.Task.Workload); name != "" {
			s += " in " + printable(name)
		}
		s += "]"
	}
	return s
}

func zkCell(e *event.Event) string {
	if e.ZK == nil {
		return ""
	}
	// The endpoint is already on the line: local for a server, remote for
	// a client. Versions, client runtime and the text are in the JSON.
	s := " zk:" + e.ZK.Role
	if v := e.Verdict; v != nil {
		if v.Situation != "" {
			s += " " + v.Situation
		}
		switch v.Code {
		case event.VerdictKnownBug:
			s += " 1702"
		case event.VerdictNotKnownBug:
			s += " not-1702"
		default:
			s += " 1702?"
		}
	}
	return s
}

// senderCell names what made a reset the TCP stack did not make.
func senderCell(e *event.Event) string {
	s := e.Sender
	if s == nil {
		return ""
	}
	if s.Inferred {
		return " sender:not-the-TCP-stack(inferred)"
	}
	c := " sender:" + strings.ReplaceAll(string(s.Class), " ", "-")
	switch {
	case s.Class == event.SenderRawSocket && s.PID != 0:
		c += " " + strconv.FormatUint(uint64(s.PID), 10) + "/" + printable(s.Comm)
	case s.Class == event.SenderRawSocket:
		c += " ?"
	case s.Detail != "":
		c += " " + s.Detail
		if s.Hook != "" {
			c += " " + s.Hook
		}
	}
	return c
}

func (t *Table) Lost(n uint64) error {
	_, err := fmt.Fprintf(t.w, "!! %d events lost: the ring buffer was full (raise --ring-buffer-size)\n", n)
	if err != nil {
		return err
	}
	return t.w.Flush()
}

func (t *Table) Summary(s *Summary) error {
	s.text(func(format string, args ...any) { fmt.Fprintf(t.w, format, args...) })
	return t.w.Flush()
}
