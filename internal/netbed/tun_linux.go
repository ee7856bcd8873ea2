//go:build linux

package netbed

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// openTUN creates TUN device name (IFF_TUN|IFF_NO_PI, not persistent) in the network namespace at
// nsPath and returns its file. /dev/net/tun is opened on a thread inside the namespace, which is what
// places the device there; the file is then usable from any thread.
func openTUN(nsPath, name string) (*os.File, error) {
	var f *os.File
	err := inNetns(nsPath, func() error {
		fd, err := unix.Open(tunPath, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", tunPath, err)
		}
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			unix.Close(fd)
			return err
		}
		ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			unix.Close(fd)
			return fmt.Errorf("TUNSETIFF %s: %w", name, err)
		}
		f = os.NewFile(uintptr(fd), tunPath+":"+name)
		return nil
	})
	return f, err
}
