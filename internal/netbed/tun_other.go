//go:build !linux

package netbed

import "os"

func openTUN(string, string) (*os.File, error) { return nil, errNotLinux }
