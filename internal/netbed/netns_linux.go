//go:build linux

package netbed

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// inNetns runs fn on the calling goroutine's OS thread while that thread is in the network namespace
// at nsPath (a file such as /run/netns/NAME). Sockets fn creates belong to that namespace for their
// whole life; fn must create them itself, on this goroutine: work fn hands to other goroutines runs in
// whatever namespace their threads are in.
//
// The thread is locked for the duration. If switching back to the original namespace fails, the
// thread stays locked, so the runtime terminates it when the goroutine exits and no other goroutine
// ever runs in the wrong namespace.
func inNetns(nsPath string, fn func() error) (err error) {
	target, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", nsPath, err)
	}
	defer unix.Close(target)

	runtime.LockOSThread()
	selfPath := "/proc/self/task/" + strconv.Itoa(unix.Gettid()) + "/ns/net"
	orig, err := unix.Open(selfPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open own namespace %s: %w", selfPath, err)
	}
	defer unix.Close(orig)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("setns into %s: %w", nsPath, err)
	}
	// Deferred so that a panic in fn also restores the thread (or leaves it locked to die).
	defer func() {
		if rerr := unix.Setns(orig, unix.CLONE_NEWNET); rerr != nil {
			err = errors.Join(err, fmt.Errorf("setns back from %s (thread left locked to die): %w", nsPath, rerr))
			return
		}
		runtime.UnlockOSThread()
	}()
	return fn()
}

// writeSysctl writes value to a /proc/sys/net file (such as "net/ipv4/ip_forward") of the network
// namespace at nsPath. /proc/sys/net resolves to the namespace of the thread that opens it.
func writeSysctl(nsPath, key, value string) error {
	return inNetns(nsPath, func() error {
		return os.WriteFile("/proc/sys/"+key, []byte(value), 0)
	})
}

// exited reports whether the child process pid has terminated, without reaping it, so that the
// caller's own cmd.Wait still collects its status.
func exited(pid int) bool {
	var info unix.Siginfo
	err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	if err != nil {
		// ECHILD: already reaped (by the caller's Wait) or not our child: either way not running for us.
		return true
	}
	return info.Signo == int32(unix.SIGCHLD)
}

// platformError says why this platform cannot host a bed, or nil.
func platformError() error { return nil }
