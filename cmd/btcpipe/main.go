// Command btcpipe is a Bitcoin peer-to-peer node built as a pipeline of
// goroutine stages. Every setting comes from the environment (BTCPIPE_*);
// run "btcpipe help" for the list.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/sirupsen/logrus"

	"github.com/btcpipe/btcpipe/internal/logsafe"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit statuses.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

// command is one btcpipe subcommand. Each lives in a file of its own and
// registers itself in init with register.
type command struct {
	name    string
	args    string // usage of its arguments
	summary string
	// settings returns the command's settings at their defaults; run
	// loads them from the environment (fresh each run) and help lists them.
	settings func() settings
	run      func(ctx context.Context, e *env, s settings, args []string) int
}

// env is what every command gets besides its settings.
type env struct {
	log            *logrus.Entry
	stdout, stderr io.Writer
}

var commands []*command

// register adds a command whose settings are an S, made by defaults and
// handed to run loaded and checked.
func register[S any, P interface {
	*S
	settings
}](name, args, summary string, defaults func() S, run func(ctx context.Context, e *env, s P, args []string) int) {
	commands = append(commands, &command{
		name: name, args: args, summary: summary,
		settings: func() settings { s := defaults(); return P(&s) },
		run:      func(ctx context.Context, e *env, s settings, a []string) int { return run(ctx, e, s.(P), a) },
	})
}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

func run(args []string, stdout, stderr io.Writer) int {
	name := "node"
	if len(args) > 0 {
		name, args = args[0], args[1:]
	}
	switch name {
	case "help", "-h", "-help", "--help":
		printUsage(stdout)
		return exitOK
	}
	cmd := lookup(name)
	if cmd == nil {
		fmt.Fprintf(stderr, "btcpipe: unknown command %q (try btcpipe help)\n", name)
		return exitUsage
	}
	s := cmd.settings()
	if err := load(s); err != nil {
		fmt.Fprintf(stderr, "btcpipe: bad configuration: %v\n", err)
		return exitUsage
	}

	// The first SIGINT or SIGTERM cancels ctx and starts a graceful stop;
	// stop() then restores the default handling, so a second one kills.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
	}()
	return cmd.run(ctx, &env{log: newLogger(*s.shared(), stdout), stdout: stdout, stderr: stderr}, s, args)
}

func newLogger(cfg Config, out io.Writer) *logrus.Entry {
	l := logrus.New()
	l.SetOutput(out)
	level, _ := logrus.ParseLevel(cfg.LogLevel) // validated
	l.SetLevel(level)
	logrus.ErrorKey = "err"
	if cfg.LogFormat == "json" {
		l.SetFormatter(&logrus.JSONFormatter{TimestampFormat: "2006-01-02T15:04:05.000Z07:00"})
	} else {
		// Text may reach a terminal: what peers send is escaped first.
		l.SetFormatter(logsafe.Formatter{Inner: &logrus.TextFormatter{FullTimestamp: true, TimestampFormat: "15:04:05.000"}})
	}
	return logrus.NewEntry(l)
}
