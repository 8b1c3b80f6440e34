package cli

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/cove-project/cove/internal/api"
	"github.com/cove-project/cove/internal/declared"
)

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
		l := api.NewLocal(declared.Default).Saying(env.Stderr)
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

// apiCommand is cove api serve, the API helper (cove-api.service runs
// cove api serve --idle 30s).
func apiCommand(env *Env) *cobra.Command {
	c := group("api", "serve the HTTP API (cove-api.service runs cove api serve)")
	c.Example = "  cove api serve --listen unix:///tmp/cove-api.sock"
	c.AddCommand(apiServeCommand(env))
	return c
}

// apiServeCommand is cove api serve.
func apiServeCommand(env *Env) *cobra.Command {
	var listen string
	var idle time.Duration
	var maxConns int
	c := &cobra.Command{
		Use:   "serve [flags]",
		Short: "serve the HTTP API",
		Long: `Serve the HTTP API on the socket systemd passes (cove-api.socket), or on --listen;
exit after --idle without a request.`,
		Example: "  cove api serve --idle 30s\n  cove api serve --listen unix:///tmp/cove-api.sock",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if idle < 0 || maxConns < 1 {
				return usagef("api serve: want --idle >= 0 and --max-conns >= 1 (see cove api serve --help)")
			}
			if listen != "" && !cmd.Flags().Changed("idle") {
				idle = 0
			}
			return serveAPI(cmd.Context(), env, listen, idle, maxConns)
		},
	}
	c.Flags().StringVar(&listen, "listen", "", "serve on this socket instead of the one systemd passes (development)")
	c.Flags().DurationVar(&idle, "idle", 30*time.Second, "exit after this long without a request; 0: never (the default with --listen)")
	c.Flags().IntVar(&maxConns, "max-conns", api.DefaultMaxConns, "connections served at once; more wait in the backlog")
	return c
}

// serveAPI serves the API on listen (see apiServeCommand).
func serveAPI(ctx context.Context, env *Env, listen string, idle time.Duration, maxConns int) error {
	l, err := api.Listen(listen)
	if err != nil {
		return err
	}
	defer l.Close()
	backend := api.NewLocal(declared.Default).Watching()
	defer backend.Close()
	srv := api.NewServer(backend, api.Options{Self: env.Self, Paths: declared.Default, Log: env.Stderr, MaxConns: maxConns})
	err = srv.Serve(ctx, l, idle)
	st := backend.CacheStats()
	fmt.Fprintf(env.Stderr, "cove-api: exiting; workloads answered from the cache %d times, fetched from systemd %d times; lists of units repeated %d times\n", st.Hits, st.Fetches, st.ListHits)
	return err
}
