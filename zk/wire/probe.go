package wire

import (
	"context"
	"errors"
	"net"
	"time"
)

// Probe asks words on t, one connection per word, falling back to the
// AdminServer for words refused by the whitelist. It stops at the first
// network failure: a dead or silent server must cost one timeout, not one
// per word.
func Probe(ctx context.Context, c *Client, a *AdminClient, t Target, words []Word, now time.Time) *ServerInfo {
	si := &ServerInfo{Endpoint: t.Client, Admin: t.Admin, ProbedAt: now}
words:
	for _, w := range words {
		err := probeWord(ctx, c, si, w)
		switch {
		case err == nil:
			si.Allowed = append(si.Allowed, w.String())
			continue
		case errors.Is(err, ErrNotWhitelisted):
			si.Reachable = true
			si.Refused = append(si.Refused, w.String())
			if t.Admin != "" && w.adminCommand() != "" {
				if aerr := probeAdmin(ctx, a, si, w); aerr != nil {
					si.addErr("admin:"+w.adminCommand(), aerr)
				} else {
					si.AdminUsed = append(si.AdminUsed, AdminURL(t.Admin, w.adminCommand()))
				}
			}
			continue
		}
		si.addErr(w.String(), err)
		if errors.Is(err, ErrNotServing) {
			si.NotServing = true
		}
		if errors.Is(err, ErrEmptyReply) || errors.Is(err, ErrMalformed) || errors.Is(err, ErrNotServing) {
			si.Reachable = true // it answered, just not usefully
		}
		if errors.Is(err, ErrNoReply) {
			si.Reachable = true // connected; a silent or hung server
			if si.Stats == nil {
				si.Err, si.Cause = err.Error(), err
			}
			break words
		}
		if isNetErr(err) {
			if !si.Reachable {
				si.Err, si.Cause = err.Error(), err
			}
			break words
		}
		if !si.ZooKeeper() && (errors.Is(err, ErrEmptyReply) || errors.Is(err, ErrMalformed)) {
			// The first word already says it is not a ZooKeeper server:
			// do not send it the others.
			si.Err, si.Cause = err.Error(), err
			break words
		}
	}
	if si.Stats == nil && si.Err == "" && si.Reachable {
		si.Err = "no usable srvr/stat answer"
		for _, w := range []string{"srvr", "stat", "admin:srvr"} {
			if e, ok := si.Errors[w]; ok {
				si.Err = e
				break
			}
		}
	}
	if si.Stats != nil {
		si.Version = si.Stats.Version.Raw
		si.Mode = si.Stats.Mode
		si.Connections = si.Stats.Connections
		si.Fingerprint = si.Stats.Fingerprint()
		if si.Clients == nil && len(si.Stats.Clients) > 0 {
			si.Clients = si.Stats.Clients
		}
	}
	return si
}

func (si *ServerInfo) addErr(word string, err error) {
	if si.Errors == nil {
		si.Errors = map[string]string{}
	}
	si.Errors[word] = err.Error()
}

func probeWord(ctx context.Context, c *Client, si *ServerInfo, w Word) error {
	reply, err := c.Raw(ctx, si.Endpoint, w)
	if err != nil {
		return err
	}
	si.Reachable = true
	wrap := func(err error) error {
		if err == nil {
			return nil
		}
		return &WordError{Endpoint: si.Endpoint, Word: w.String(), Err: err}
	}
	switch w {
	case Srvr(), Stat():
		s, err := ParseStat(reply)
		if err == nil && (si.Stats == nil || len(s.Clients) > 0) {
			si.Stats, si.StatsSource = s, w.String()+" on "+si.Endpoint
		}
		return wrap(err)
	case Cons():
		cs, err := ParseCons(reply)
		if err == nil {
			si.Clients = cs
		}
		return wrap(err)
	case Envi():
		si.Env, err = ParseKV(reply)
		return wrap(err)
	case Conf():
		si.Conf, err = ParseKV(reply)
		return wrap(err)
	case Mntr():
		si.Mntr, err = ParseMntr(reply)
		return wrap(err)
	case Ruok():
		err = ParseRuok(reply)
		si.Ruok = err == nil
		return wrap(err)
	case Isro():
		_, err = ParseIsro(reply)
		return wrap(err)
	}
	return nil
}

func probeAdmin(ctx context.Context, a *AdminClient, si *ServerInfo, w Word) error {
	cmd := w.adminCommand()
	body, err := a.Command(ctx, si.Admin, cmd)
	if err != nil {
		return err
	}
	wrap := func(err error) error {
		if err == nil {
			return nil
		}
		return &WordError{Endpoint: si.Admin, Word: "admin:" + cmd, Err: err}
	}
	switch w {
	case Srvr(), Stat():
		s, err := ParseAdminStat(body)
		if err == nil && si.Stats == nil {
			si.Stats, si.StatsSource = s, "AdminServer "+AdminURL(si.Admin, cmd)
		}
		return wrap(err)
	case Cons():
		cs, err := ParseAdminConnections(body)
		if err == nil {
			si.Clients = cs
		}
		return wrap(err)
	case Envi():
		si.Env, err = ParseAdminMap(body)
		return wrap(err)
	case Conf():
		si.Conf, err = ParseAdminMap(body)
		return wrap(err)
	case Mntr():
		si.Mntr, err = ParseAdminMap(body)
		return wrap(err)
	case Ruok():
		_, err = decodeAdmin(body)
		si.Ruok = err == nil
		return wrap(err)
	case Isro():
		_, err = ParseAdminMap(body)
		return wrap(err)
	}
	return nil
}

// isNetErr: dial, timeout, reset: the endpoint itself is the problem.
func isNetErr(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ne) || errors.As(err, &oe) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}
