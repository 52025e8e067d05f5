package pgtest

import "syscall"

// procAttr runs a child as cred (nil: this user) and sends it sig when this
// process dies, so that a killed test run leaves no server behind. Go sets
// the parent-death signal after changing credentials, which would clear it.
func procAttr(cred *syscall.Credential, sig syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Pdeathsig: sig, Setpgid: true}
}
