package main

import "syscall"

// childAttr makes a daemon started by a test die with the test binary: a
// test binary killed by its timeout would otherwise leave its dagnode
// processes running (mining) behind it.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
