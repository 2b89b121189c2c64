package storm

import (
	"errors"
	"fmt"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// newLinger gives each worker its own listener on 127.0.0.1, so a worker
// connects, accepts and closes on its own and never waits for another.
//
// Neither end leaves TIME_WAIT behind (the closer aborts, the accepted
// socket dies of the reset), so ephemeral ports are reused at once and the
// storm cannot exhaust net.ipv4.ip_local_port_range.
func newLinger(n int) (worker, func(), error) {
	listeners := make(chan int, n)
	var fds []int
	cleanup := func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
	for range n {
		fd, err := listen()
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		fds = append(fds, fd)
		listeners <- fd
	}
	w := func(stop *atomic.Bool, c *counter) {
		ln := <-listeners
		sa, err := unix.Getsockname(ln)
		if err != nil {
			c.fail("getsockname", err)
			return
		}
		dst := &unix.SockaddrInet4{Addr: loopback, Port: sa.(*unix.SockaddrInet4).Port}
		for !stop.Load() {
			if err := abortOnce(ln, dst); err != nil {
				c.fail("linger", err)
				continue
			}
			c.resets++
		}
	}
	return w, cleanup, nil
}

func listen() (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("storm: listener socket: %w", err)
	}
	// accept must never block the storm past its end.
	tv := unix.Timeval{Sec: 1}
	err = errors.Join(
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv),
		unix.Bind(fd, &unix.SockaddrInet4{Addr: loopback}),
		unix.Listen(fd, 128),
	)
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("storm: listening on 127.0.0.1: %w", err)
	}
	return fd, nil
}

// abortOnce makes one connection and aborts it: exactly one reset, sent by
// the closing socket and received by the accepted one.
func abortOnce(ln int, dst *unix.SockaddrInet4) error {
	c, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	if err := unix.Connect(c, dst); err != nil {
		unix.Close(c)
		return err
	}
	a, _, err := unix.Accept4(ln, unix.SOCK_CLOEXEC)
	if err != nil {
		unix.Close(c)
		return err
	}
	// Closing the accepted socket first would send a FIN, not a reset.
	err = unix.SetsockoptLinger(c, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	errs := errors.Join(err, unix.Close(c), unix.Close(a))
	return errs
}
