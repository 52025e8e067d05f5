//go:build !linux

package pgtest

import "syscall"

// procAttr runs a child as cred (nil: this user). Without Linux's
// parent-death signal a killed test run may leave its server running: the
// next run's sweep stops it.
func procAttr(cred *syscall.Credential, _ syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Setpgid: true}
}
