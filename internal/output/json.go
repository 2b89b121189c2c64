// Package output writes events, lost-event notices and the closing summary
// as an aligned table or as JSON lines. The JSON line format is a contract
// other tools parse; see README.md "JSON output".
package output

import (
	"bufio"
	"io"
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/rstwatch/rstwatch/internal/event"
)

// Sink receives what a trace produces, in order, from one goroutine.
type Sink interface {
	Event(e *event.Event) error
	Lost(n uint64) error
	Summary(s *Summary) error
	// Flush writes out anything buffered; it is called at the end and
	// whenever the event stream goes quiet.
	Flush() error
}

// JSON writes one JSON object per line with append-style encoding: no
// reflection and no per-event allocation on the hot path.
type JSON struct {
	w   *bufio.Writer
	buf []byte
}

func NewJSON(w io.Writer) *JSON {
	return &JSON{w: bufio.NewWriterSize(w, 64<<10), buf: make([]byte, 0, 1024)}
}

func (j *JSON) Flush() error { return j.w.Flush() }

func (j *JSON) Event(e *event.Event) error {
	b := j.buf[:0]
	b = append(b, `{"type":"reset","time":"`...)
	b = e.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","direction":"`...)
	b = append(b, e.Direction.String()...)
	b = append(b, `","family":"`...)
	b = append(b, e.Family()...)
	b = append(b, `","local":`...)
	b = appendEndpoint(b, e.Local)
	b = append(b, `,"remote":`...)
	b = appendEndpoint(b, e.Remote)
	b = append(b, `,"state":`...)
	b = appendStringOrNull(b, e.State)
	b = append(b, `,"reason":`...)
	b = appendString(b, e.Reason)
	b = append(b, `,"netns":`...)
	b = strconv.AppendUint(b, uint64(e.NetNS), 10)
	b = append(b, `,"cookie":`...)
	if e.Cookie != 0 {
		b = strconv.AppendUint(b, e.Cookie, 10)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"task":{"pid":`...)
	b = strconv.AppendUint(b, uint64(e.Task.PID), 10)
	b = append(b, `,"tid":`...)
	b = strconv.AppendUint(b, uint64(e.Task.TID), 10)
	b = append(b, `,"comm":`...)
	b = appendString(b, e.Task.Comm)
	b = append(b, `,"thread":`...)
	b = appendString(b, e.Task.Thread)
	if w := e.Task.Workload; w != nil {
		b = appendWorkload(b, w)
	}
	b = append(b, `},"owner":`...)
	if o := e.Owner; o != nil {
		b = append(b, `{"pid":`...)
		b = strconv.AppendUint(b, uint64(o.PID), 10)
		b = append(b, `,"comm":`...)
		b = appendString(b, o.Comm)
		b = append(b, `,"alive":`...)
		b = strconv.AppendBool(b, o.Alive)
		if o.TID != 0 {
			b = append(b, `,"tid":`...)
			b = strconv.AppendUint(b, uint64(o.TID), 10)
		}
		b = append(b, `,"source":"`...)
		b = append(b, o.Source.String()...)
		b = append(b, '"')
		if o.Workload != nil {
			b = appendWorkload(b, o.Workload)
		} else {
			b = append(b, `,"cgroup":null`...)
		}
		b = append(b, '}')
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"task_is_owner":`...)
	b = strconv.AppendBool(b, e.TaskIsOwner())
	if e.Sender != nil {
		b = appendSender(b, e.Sender)
	}
	if z := e.ZK; z != nil {
		b = append(b, `,"zk":{"endpoint":`...)
		b = appendString(b, z.Endpoint.String())
		b = append(b, `,"role":`...)
		b = appendString(b, z.Role)
		b = append(b, `,"server_version":`...)
		b = appendStringOrNull(b, z.ServerVersion)
		b = append(b, `,"server_version_at":`...)
		if z.ServerVersionAt.IsZero() {
			b = append(b, "null"...)
		} else {
			b = append(b, '"')
			b = z.ServerVersionAt.UTC().AppendFormat(b, time.RFC3339Nano)
			b = append(b, '"')
		}
		b = append(b, `,"mode":`...)
		b = appendStringOrNull(b, z.Mode)
		b = append(b, `,"session":`...)
		b = appendStringOrNull(b, z.Session)
		b = append(b, `,"client_pid":`...)
		if z.ClientPID != 0 {
			b = strconv.AppendUint(b, uint64(z.ClientPID), 10)
		} else {
			b = append(b, "null"...)
		}
		b = append(b, `,"client_runtime":`...)
		b = appendStringOrNull(b, z.ClientRuntime)
		b = append(b, `,"client_library":`...)
		b = appendStringOrNull(b, z.ClientLibrary)
		b = append(b, `,"client_version":`...)
		b = appendStringOrNull(b, z.ClientVersion)
		b = append(b, '}')
	}
	if v := e.Verdict; v != nil {
		b = append(b, `,"verdict":{"code":`...)
		b = appendString(b, v.Code)
		b = append(b, `,"situation":`...)
		b = appendStringOrNull(b, v.Situation)
		if sd := v.Sender; sd != nil {
			b = append(b, `,"sender":{"local":`...)
			b = appendString(b, sd.Local.String())
			b = append(b, `,"reason":`...)
			b = appendString(b, sd.Reason)
			b = append(b, `,"owner":`...)
			if o := sd.Owner; o != nil {
				b = append(b, `{"pid":`...)
				b = strconv.AppendUint(b, uint64(o.PID), 10)
				b = append(b, `,"comm":`...)
				b = appendString(b, o.Comm)
				b = append(b, `,"alive":`...)
				b = strconv.AppendBool(b, o.Alive)
				b = append(b, `,"source":"`...)
				b = append(b, o.Source.String()...)
				b = append(b, `"}`...)
			} else {
				b = append(b, "null"...)
			}
			b = append(b, '}')
		}
		b = append(b, `,"text":`...)
		b = appendString(b, v.Text)
		b = append(b, '}')
	}
	b = append(b, "}\n"...)
	j.buf = b
	_, err := j.w.Write(b)
	return err
}

func (j *JSON) Lost(n uint64) error {
	b := append(j.buf[:0], `{"type":"lost","count":`...)
	b = strconv.AppendUint(b, n, 10)
	b = append(b, "}\n"...)
	j.buf = b
	if _, err := j.w.Write(b); err != nil {
		return err
	}
	// Drops are news: do not leave them in a buffer.
	return j.w.Flush()
}

func (j *JSON) Summary(s *Summary) error {
	b, err := s.MarshalJSON()
	if err != nil {
		return err
	}
	if _, err := j.w.Write(append(b, '\n')); err != nil {
		return err
	}
	return j.w.Flush()
}

// appendWorkload writes the cgroup and what names it: "cgroup" {id, path},
// then "unit", "user_unit", "container" and "pod" where known.
func appendWorkload(b []byte, w *event.Workload) []byte {
	b = append(b, `,"cgroup":{"id":`...)
	b = strconv.AppendUint(b, w.Cgroup, 10)
	b = append(b, `,"path":`...)
	b = appendStringOrNull(b, w.Path)
	b = append(b, '}')
	if w.Unit != "" {
		b = append(b, `,"unit":`...)
		b = appendString(b, w.Unit)
	}
	if w.UserUnit != "" {
		b = append(b, `,"user_unit":`...)
		b = appendString(b, w.UserUnit)
	}
	if c := w.Container; c != nil {
		b = append(b, `,"container":{"id":`...)
		b = appendString(b, c.ID)
		b = append(b, `,"runtime":`...)
		b = appendStringOrNull(b, c.Runtime)
		b = append(b, `,"name":`...)
		b = appendStringOrNull(b, c.Name)
		b = append(b, '}')
	}
	if p := w.Pod; p != nil {
		b = append(b, `,"pod":{"namespace":`...)
		b = appendString(b, p.Namespace)
		b = append(b, `,"name":`...)
		b = appendString(b, p.Name)
		b = append(b, `,"uid":`...)
		b = appendString(b, p.UID)
		b = append(b, `,"container":`...)
		b = appendStringOrNull(b, p.Container)
		b = append(b, '}')
	}
	return b
}

// appendSender writes the "sender" object of a reset the TCP stack did not
// make (see README "Resets the TCP stack never reports").
func appendSender(b []byte, s *event.Sender) []byte {
	b = append(b, `,"sender":{"class":`...)
	b = appendString(b, string(s.Class))
	b = append(b, `,"detail":`...)
	b = appendStringOrNull(b, s.Detail)
	b = append(b, `,"hook":`...)
	b = appendStringOrNull(b, s.Hook)
	b = append(b, `,"netns":`...)
	b = appendUintOrNull(b, uint64(s.NetNS))
	b = append(b, `,"device":`...)
	b = appendStringOrNull(b, s.Device)
	b = append(b, `,"pid":`...)
	b = appendUintOrNull(b, uint64(s.PID))
	b = append(b, `,"comm":`...)
	b = appendStringOrNull(b, s.Comm)
	b = append(b, `,"socket_inode":`...)
	b = appendUintOrNull(b, s.Socket)
	b = append(b, `,"inferred":`...)
	b = strconv.AppendBool(b, s.Inferred)
	return append(b, '}')
}

func appendUintOrNull(b []byte, v uint64) []byte {
	if v == 0 {
		return append(b, "null"...)
	}
	return strconv.AppendUint(b, v, 10)
}

func appendEndpoint(b []byte, ap netip.AddrPort) []byte {
	b = append(b, `{"addr":"`...)
	b = ap.Addr().AppendTo(b)
	b = append(b, `","port":`...)
	b = strconv.AppendUint(b, uint64(ap.Port()), 10)
	return append(b, '}')
}

func appendStringOrNull(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendString(b, s)
}

const hex = "0123456789abcdef"

// appendString writes s as a JSON string. Process names are chosen by
// processes, so anything may be in them: control bytes are escaped and
// invalid UTF-8 becomes U+FFFD, as encoding/json does.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
