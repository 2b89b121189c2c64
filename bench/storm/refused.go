package storm

import (
	"fmt"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

var loopback = [4]byte{127, 0, 0, 1}

// newRefused holds a port on 127.0.0.1 bound but not listening: SYNs to it
// are answered with a reset by the kernel, and holding the bind keeps
// anyone else from listening there, and keeps a connect from picking it as
// its own source port (which would make a self-connect, not a reset).
func newRefused() (worker, func(), error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("storm: socket for the closed port: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: loopback}); err != nil {
		unix.Close(fd)
		return nil, nil, fmt.Errorf("storm: binding the closed port: %w", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return nil, nil, fmt.Errorf("storm: closed port: %w", err)
	}
	dst := &unix.SockaddrInet4{Addr: loopback, Port: sa.(*unix.SockaddrInet4).Port}
	w := func(stop *atomic.Bool, c *counter) {
		for !stop.Load() {
			if err := refuseOnce(dst); err != nil {
				c.fail("connect", err)
				continue
			}
			c.resets++
		}
	}
	return w, func() { unix.Close(fd) }, nil
}

// refuseOnce makes one connect that the kernel refuses: one reset sent and
// one received. Non-blocking, because on loopback the reset has usually
// been processed by the time connect returns, and a blocking connect would
// only add a sleep and a wake-up.
func refuseOnce(dst *unix.SockaddrInet4) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	err = unix.Connect(fd, dst)
	if err == unix.EINPROGRESS {
		err = connectResult(fd)
	}
	switch err {
	case unix.ECONNREFUSED:
		return nil
	case nil:
		return fmt.Errorf("connected: something listens on 127.0.0.1:%d", dst.Port)
	}
	return err
}

// connectResult waits (boundedly) for a non-blocking connect to finish.
// The reset has nearly always been processed before connect returned, so
// the error is read first and poll is only the rare fallback: one syscall
// less per reset is a few percent more storm.
func connectResult(fd int) error {
	if err := soError(fd); err != nil {
		return err
	}
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	n, err := unix.Poll(pfd, 1000)
	if err != nil {
		return err
	}
	if n == 0 {
		return unix.ETIMEDOUT
	}
	return soError(fd)
}

// soError reads and clears the socket's pending error, nil if none.
func soError(fd int) error {
	soErr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return err
	}
	if soErr != 0 {
		return unix.Errno(soErr)
	}
	return nil
}
