package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

func main() {
	os.Exit(realMain())
}

// realMain wires signals: the first SIGINT/SIGTERM starts a graceful shutdown,
// a second one forces the process out.
func realMain() int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		select {
		case s := <-sigs:
			slog.Info("shutting down; signal again to force exit", "signal", s.String())
			cancel()
		case <-ctx.Done():
			return
		}
		select {
		case <-sigs:
			slog.Error("forced exit")
			os.Exit(exitError)
		case <-ctx.Done():
		}
	}()
	return run(ctx, os.Args[1:], os.Stdout, os.Stderr)
}

// run runs dagnode with args until ctx ends (the daemon) or the command is
// done, and returns the exit code. Errors go to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var err error
	switch {
	case len(args) > 0 && args[0] == "keys":
		err = runKeys(args[1:], stdout)
	case len(args) > 0 && args[0] == "rpc":
		err = runRPC(ctx, args[1:], stdout)
	case len(args) > 0 && args[0] == "devnet":
		err = runDevnet(ctx, args[1:], stdout, stderr)
	default:
		err = runNode(ctx, args, stdout, stderr)
	}
	var uerr *usageError
	switch {
	case err == nil, errors.Is(err, errHelp):
		return exitOK
	case errors.As(err, &uerr):
		fmt.Fprintf(stderr, "dagnode: %v\n", err)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "dagnode: %v\n", err)
		return exitError
	}
}

// newLogger returns the one logger every part of the node gets.
func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}
