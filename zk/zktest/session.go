package zktest

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"
)

// Session is a minimal ZooKeeper client connection: the jute ConnectRequest
// handshake only, enough for the server to list it with a session id.
type Session struct {
	Conn net.Conn
	ID   uint64
	xid  uint32
}

// OpenSession connects to addr and establishes a new session.
func OpenSession(addr string, timeout time.Duration) (*Session, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(timeout))
	be := binary.BigEndian
	body := be.AppendUint32(nil, 0)          // protocolVersion
	body = be.AppendUint64(body, 0)          // lastZxidSeen
	body = be.AppendUint32(body, 30000)      // timeOut (ms)
	body = be.AppendUint64(body, 0)          // sessionId: new
	body = be.AppendUint32(body, 16)         // passwd length
	body = append(body, make([]byte, 16)...) // passwd
	body = append(body, 0)                   // readOnly
	msg := append(be.AppendUint32(nil, uint32(len(body))), body...)
	if _, err := c.Write(msg); err != nil {
		c.Close()
		return nil, fmt.Errorf("write ConnectRequest: %w", err)
	}
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		c.Close()
		return nil, fmt.Errorf("read ConnectResponse length: %w", err)
	}
	n := be.Uint32(hdr[:])
	if n < 16 || n > 1024 {
		c.Close()
		return nil, fmt.Errorf("ConnectResponse length %d", n)
	}
	resp := make([]byte, n)
	if _, err := io.ReadFull(c, resp); err != nil {
		c.Close()
		return nil, fmt.Errorf("read ConnectResponse: %w", err)
	}
	c.SetDeadline(time.Time{})
	return &Session{Conn: c, ID: be.Uint64(resp[8:16])}, nil
}

// Close sends closeSession (so the server has nothing left unread and the
// connection ends with FINs, not a reset) and closes the connection.
func (s *Session) Close() error {
	be := binary.BigEndian
	s.xid++
	body := be.AppendUint32(nil, s.xid)              // xid
	body = be.AppendUint32(body, uint32(0xfffffff5)) // OpCode.closeSession = -11
	msg := append(be.AppendUint32(nil, uint32(len(body))), body...)
	s.Conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := s.Conn.Write(msg); err == nil {
		io.Copy(io.Discard, s.Conn) // the reply, then the server's FIN
	}
	return s.Conn.Close()
}

// Create creates a persistent znode at path with no data (open ACL), for
// tests that fire other clients' watches. It waits for the reply.
func (s *Session) Create(path string) error {
	be := binary.BigEndian
	s.xid++
	body := be.AppendUint32(nil, s.xid)             // xid
	body = be.AppendUint32(body, 1)                 // OpCode.create
	body = be.AppendUint32(body, uint32(len(path))) // path
	body = append(body, path...)
	body = be.AppendUint32(body, 0)  // data: empty
	body = be.AppendUint32(body, 1)  // one ACL
	body = be.AppendUint32(body, 31) // perms: ALL
	body = be.AppendUint32(body, 5)  // scheme
	body = append(body, "world"...)  //
	body = be.AppendUint32(body, 6)  // id
	body = append(body, "anyone"...) //
	body = be.AppendUint32(body, 0)  // flags: persistent
	msg := append(be.AppendUint32(nil, uint32(len(body))), body...)
	s.Conn.SetDeadline(time.Now().Add(5 * time.Second))
	defer s.Conn.SetDeadline(time.Time{})
	if _, err := s.Conn.Write(msg); err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	var hdr [4]byte
	if _, err := io.ReadFull(s.Conn, hdr[:]); err != nil {
		return fmt.Errorf("create %s: reply length: %w", path, err)
	}
	n := be.Uint32(hdr[:])
	if n < 16 || n > 4096 {
		return fmt.Errorf("create %s: reply length %d", path, n)
	}
	reply := make([]byte, n)
	if _, err := io.ReadFull(s.Conn, reply); err != nil {
		return fmt.Errorf("create %s: reply: %w", path, err)
	}
	// ReplyHeader: xid, zxid (int64), err (int32).
	if code := int32(be.Uint32(reply[12:16])); code != 0 {
		return fmt.Errorf("create %s: ZooKeeper error %d", path, code)
	}
	return nil
}
