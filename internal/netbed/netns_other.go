//go:build !linux

package netbed

import "errors"

var errNotLinux = errors.New("netbed: network namespaces need Linux")

func inNetns(string, func() error) error { return errNotLinux }

func writeSysctl(string, string, string) error { return errNotLinux }

func exited(int) bool { return true }

func platformError() error { return errNotLinux }
