//go:build !linux

package main

import "syscall"

// childAttr is childAttr of procattr_linux_test.go where there is no parent
// death signal: nil.
func childAttr() *syscall.SysProcAttr { return nil }
