package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cove-project/cove/internal/api"
	"github.com/cove-project/cove/internal/declared"
	"github.com/cove-project/cove/internal/hostcheck"
	"github.com/cove-project/cove/internal/network"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/units"
)

// validateCommand is cove validate: it checks spec and network files
// and reports every error in every file.
func validateCommand(env *Env) *cobra.Command {
	var out *output
	c := &cobra.Command{
		Use:   "validate [flags] FILE...",
		Short: "check spec files",
		Long: `Check spec and network files (a network file also against the declared
networks); every error is listed with FILE:LINE:COL. Each valid file is
listed ("FILE: ok (KIND NAME)"); --json and --format show them as the
API's validate does (file, name, kind).`,
		Example: `  cove validate web.toml
  cove validate /etc/cove/*.toml /etc/cove/networks/*.toml
  cove validate --format '{{.Name}}' /etc/cove/*.toml`,
		Args:              wantArgs(1, -1, "at least one spec file"),
		ValidArgsFunction: completeSpecFiles,
		RunE: func(_ *cobra.Command, args []string) error {
			var bad spec.Errors
			valid := []api.ValidSpec{}
			var lines []string
			for _, f := range args {
				v, line, err := validateFile(f, env)
				if err != nil {
					bad = append(bad, asSpecErrors(f, err)...)
					continue
				}
				valid, lines = append(valid, v), append(lines, line)
			}
			done, err := out.print(env.Stdout, valid)
			if err != nil {
				return err
			}
			if !done {
				fmt.Fprint(env.Stdout, strings.Join(lines, ""))
			}
			if len(bad) > 0 {
				return bad
			}
			return nil
		},
	}
	out = outputFlags(c)
	return c
}

// validateFile loads and compiles one file and returns what it declares
// and the line cove validate prints for it.
func validateFile(path string, env *Env) (api.ValidSpec, string, error) {
	s, err := loadSpec(path, "")
	if spec.IsNetworkFile(err) {
		return validateNetworkFile(path)
	}
	if err != nil {
		return api.ValidSpec{}, "", err
	}
	if _, err := units.Compile(s, units.Options{Launcher: env.Self}); err != nil {
		return api.ValidSpec{}, "", err
	}
	return api.ValidSpec{File: path, Name: s.Name, Kind: s.Kind}, fmt.Sprintf("%s: ok (%s %s)\n", path, s.Kind, s.Name), nil
}

// asSpecErrors flattens err into spec errors, so that errors of several
// files print together.
func asSpecErrors(file string, err error) spec.Errors {
	switch e := err.(type) {
	case spec.Errors:
		return e
	case *spec.Error:
		return spec.Errors{e}
	}
	return spec.Errors{{File: file, Msg: err.Error()}}
}

// renderCommand is cove render: the unit file cove would use for a spec.
func renderCommand(env *Env) *cobra.Command {
	var name string
	var launchConfig bool
	c := &cobra.Command{
		Use:     "render [flags] FILE",
		Short:   "print the unit file of a spec",
		Example: "  cove render web.toml\n  cove render --name web2 web.toml\n  cove render --launch-config web.toml",
		Args:    wantArgs(1, 1, "exactly one spec file"),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return completeSpecFiles(cmd, args, toComplete)
		},
		RunE: func(_ *cobra.Command, args []string) error {
			s, err := loadSpec(args[0], name)
			if err != nil {
				return err
			}
			all, err := declared.Units(s, env.Self)
			if err != nil {
				return err
			}
			if launchConfig {
				if all[0].LaunchArgs == nil {
					return fmt.Errorf("render %s: only a container's launcher has a configuration file", args[0])
				}
				_, err = env.Stdout.Write(launch.ConfigFileText(all[0].LaunchArgs))
				return err
			}
			text, err := all[0].Text(args[0])
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(env.Stdout, text)
			return err
		},
	}
	c.Flags().StringVar(&name, "name", "", "workload name (default: from the file name)")
	c.Flags().BoolVar(&launchConfig, "launch-config", false, "print the container launcher's arguments (the file of its ExecStart=) instead")
	return c
}

// validateNetworkFile checks a network file on its own and against the
// other declared networks (see validateFile).
func validateNetworkFile(path string) (api.ValidSpec, string, error) {
	n, err := spec.LoadNetwork(path)
	if err != nil {
		return api.ValidSpec{}, "", err
	}
	if err := network.Declared.Check(n, path); err != nil {
		return api.ValidSpec{}, "", err
	}
	return api.ValidSpec{File: path, Name: n.Name, Kind: spec.KindNetwork},
		fmt.Sprintf("%s: ok (network %s: %v, bridge %s)\n", path, n.Name, n.Subnets(), n.Bridge), nil
}

// loadSpec loads a spec and checks it against this host (hostcheck.Prepare:
// the files it names exist, disk formats pinned).
func loadSpec(path, name string) (*spec.Spec, error) {
	s, err := spec.Load(path, name)
	if err != nil {
		return nil, err
	}
	if err := hostcheck.Prepare(s); err != nil {
		return nil, err
	}
	return s, nil
}
