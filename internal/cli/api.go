package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/cove-project/cove/internal/api"
	"github.com/cove-project/cove/internal/declared"
)

// remoteVerbs are the verbs that work through the API (api.Backend); the
// others need systemd itself (cove run passes file descriptors to it).
var remoteVerbs = map[string]bool{
	"ps": true, "status": true, "start": true, "stop": true, "restart": true,
	"rm": true, "kill": true, "logs": true, "apply": true, "diff": true, "version": true,
}

// hostFlag takes the global --host URL (or -H URL, --host=URL) from the
// front of args into env.Host and returns the rest. An explicit --host
// before a verb that cannot use the API is a usage error.
func hostFlag(env *Env, args []string) ([]string, error) {
	explicit := false
	for len(args) > 0 {
		name, value, hasValue := strings.Cut(args[0], "=")
		if name != "--host" && name != "-H" {
			break
		}
		if !hasValue {
			if len(args) < 2 {
				return nil, usagef("%s: want an address such as %s", name, api.DefaultHost)
			}
			value, args = args[1], args[1:]
		}
		env.Host, explicit, args = value, true, args[1:]
	}
	if explicit && len(args) > 0 && !strings.HasPrefix(args[0], "-") && args[0] != "help" && !remoteVerbs[args[0]] {
		return nil, usagef("%s: does not work through the API (--host); run it as root on the host", args[0])
	}
	return args, nil
}

// withBackend runs f with what the workload verbs use: the API at
// env.Host (--host or COVE_HOST) if set; else systemd itself when cove
// runs as root; else the API at its default socket. Output is the same
// either way.
func withBackend(ctx context.Context, env *Env, f func(api.Backend) error) error {
	host := env.Host
	if host == "" && os.Geteuid() != 0 {
		host = api.DefaultHost
	}
	if host == "" {
		l := api.NewLocal(declared.Default)
		defer l.Close()
		return f(l)
	}
	c, err := api.NewClient(host)
	if err != nil {
		return usageError{fmt.Errorf("--host: %w", err)}
	}
	defer c.Close()
	return f(c)
}

// apiCmd runs the API helper: cove api serve.
func apiCmd(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 || args[0] != "serve" {
		return usagef("api: want a subcommand: serve (see cove api serve -h)")
	}
	fs := newFlags("api serve", "[--listen unix:///PATH] [--idle DURATION] [--max-conns N]", env.Stderr)
	listen := fs.String("listen", "", "serve on this socket instead of the one systemd passes (development)")
	idle := fs.Duration("idle", 30*time.Second, "exit after this long without a request; 0: never (the default with --listen)")
	maxConns := fs.Int("max-conns", api.DefaultMaxConns, "connections served at once; more wait in the backlog")
	if ok, err := parse(fs, args[1:]); !ok || err != nil {
		return err
	}
	if fs.NArg() != 0 || *idle < 0 || *maxConns < 1 {
		return usagef("api serve: want no arguments, --idle >= 0 and --max-conns >= 1 (see cove api serve -h)")
	}
	if *listen != "" && !isSet(fs, "idle") {
		*idle = 0
	}
	l, err := api.Listen(*listen)
	if err != nil {
		return err
	}
	defer l.Close()
	backend := api.NewLocal(declared.Default).Watching()
	defer backend.Close()
	srv := api.NewServer(backend, api.Options{Self: env.Self, Paths: declared.Default, Log: env.Stderr, MaxConns: *maxConns})
	err = srv.Serve(ctx, l, *idle)
	st := backend.CacheStats()
	fmt.Fprintf(env.Stderr, "cove-api: exiting; workloads answered from the cache %d times, fetched from systemd %d times\n", st.Hits, st.Fetches)
	return err
}

// isSet reports whether flag name was given.
func isSet(fs *flagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
