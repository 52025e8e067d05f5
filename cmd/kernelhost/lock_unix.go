//go:build unix

package main

import (
	"errors"
	"os"
	"syscall"
)

// tryFlock takes f's flock in mode without waiting; errLocked when another
// open file holds a lock that excludes it.
func tryFlock(f *os.File, mode lockMode) error {
	how := syscall.LOCK_EX
	if mode == lockShared {
		how = syscall.LOCK_SH
	}
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EWOULDBLOCK):
			return errLocked
		}
		return err
	}
}

// processAlive reports whether a process with pid exists (one of another
// user's included: EPERM).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
