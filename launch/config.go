// Package launch is the contract between a unit and cove's launcher: what
// a unit's ExecStart= tells it (Config for containers, VMConfig for VMs,
// their command-line forms, inline or in a file: see ConfigFile), the
// hidden verbs and the runtime paths both sides use. The compiler (package units) writes it; the launcher (package
// isolate, through cove's hidden verbs) reads it. It is pure: no syscalls.
package launch

import (
	"cmp"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cove-project/cove/internal/network/plan"
	"github.com/cove-project/cove/spec"
)

// Config is everything the container launcher needs.
type Config struct {
	Name           string       // workload name (for messages)
	Rootfs         string       // absolute path of the root directory; "" for an image container
	Argv           []string     // payload command; Argv[0] resolved in the root
	Env            []string     // payload environment, KEY=VALUE
	Workdir        string       // absolute, inside the container
	UID, GID       uint32       // identity of the payload
	Hostname       string       // UTS hostname
	PrivateNetwork bool         // new network namespace with only lo
	Network        string       // with PrivateNetwork: a network to join (eth0 on its bridge), "" for none
	MoreNetworks   []string     // with Network: more networks to join (eth1, eth2, … on their bridges)
	Aliases        []string     // with Network: more names the networks' DNS answers with its addresses
	NetworkOf      string       // without PrivateNetwork: the container (workload or instance) whose network namespace it shares; "" for the host's
	IP             netip.Addr   // with Network: the IPv4 address to lease; zero: any free one
	Ports          []plan.Port  // with Network: published ports
	Caps           []string     // capability bounding set kept, "CAP_…" names
	Seccomp        bool         // install cove's seccomp deny-list filter
	NoNewPrivs     bool         // set no_new_privs before exec
	ReadOnly       bool         // the root file system is read-only
	Volatile       bool         // writes to the root go to a tmpfs overlay, the rootfs is untouched
	Mounts         []spec.Mount // mounted over the rootfs, in order; one JSON object per --mount
	Console        bool         // stdin is a console socket: give the payload a pty (cove run -t, cove exec -t)
	Init           bool         // PID 1 is InitPath with the payload as its child (service.init), not the payload
	UserNS         string       // spec.UserNSAuto or "UID:COUNT": a user namespace of its own (the launcher allocates auto's IDs); "" or spec.UserNSHost: none

	// An image container (see image.go).
	Image

	// Readiness: when the launcher tells systemd READY=1.
	Ready         string        // spec.ReadyStarted (default), spec.ReadyNotify, spec.ReadyTCP or spec.ReadyHealthy
	ReadyPort     int           // spec.ReadyTCP: this port accepts connections
	Probe         []string      // spec.ReadyHealthy: this command succeeds inside
	ProbeInterval time.Duration // between readiness checks
	ProbeTimeout  time.Duration // of one Probe run
}

// ForInstance returns c for inst, an instance (NAME@I) of c's
// replicated workload: inst's name, the hostname NAME-I in place of the
// default one, and in place of the workload's state directory inst's own
// (its writable layer). Any other inst leaves c as it is.
func (c Config) ForInstance(inst string) Config {
	base, _, ok := spec.SplitInstance(inst)
	if !ok || base != c.Name {
		return c
	}
	if c.Hostname == spec.DefaultHostname(c.Name) {
		c.Hostname = spec.DefaultHostname(inst)
	}
	if c.Image.StateDir == ContainerDir(c.Name) {
		c.Image.StateDir = ContainerDir(inst)
	}
	c.Name = inst
	return c
}

// Networks are every network c joins, Network first; none without one.
func (c Config) Networks() []string {
	if c.Network == "" {
		return nil
	}
	return append([]string{c.Network}, c.MoreNetworks...)
}

// Args renders c as launcher arguments (after the "launch" verb). ParseArgs
// is its inverse.
func (c Config) Args() []string {
	a := append([]string{"--name", c.Name}, c.rootArgs()...)
	a = append(a,
		"--hostname", c.Hostname,
		"--private-network="+strconv.FormatBool(c.PrivateNetwork),
	)
	if c.NetworkOf != "" {
		a = append(a, "--network-of", c.NetworkOf)
	}
	for _, n := range c.Networks() {
		a = append(a, "--network", n)
	}
	for _, n := range c.Aliases {
		a = append(a, "--alias", n)
	}
	a = append(a, joinArgs(c.IP, c.Ports)...)
	a = append(a,
		"--caps", strings.Join(c.Caps, ","),
		"--seccomp="+strconv.FormatBool(c.Seccomp),
		"--no-new-privileges="+strconv.FormatBool(c.NoNewPrivs),
	)
	for _, e := range c.Env {
		a = append(a, "--env", e)
	}
	if c.ReadOnly {
		a = append(a, "--read-only")
	}
	if c.Volatile {
		a = append(a, "--volatile")
	}
	if c.Console {
		a = append(a, "--console")
	}
	if c.Init {
		a = append(a, "--init")
	}
	if spec.HasUserNS(c.UserNS) {
		a = append(a, "--userns", c.UserNS)
	}
	for _, m := range c.Mounts {
		b, _ := json.Marshal(m) // cannot fail: strings, a bool and a number
		a = append(a, "--mount", string(b))
	}
	if c.Ready != "" && c.Ready != spec.ReadyStarted {
		a = append(a, "--ready", c.Ready, "--ready-port", strconv.Itoa(c.ReadyPort),
			"--probe-interval", c.ProbeInterval.String(), "--probe-timeout", c.ProbeTimeout.String())
		for _, p := range c.Probe {
			a = append(a, "--probe", p)
		}
	}
	a = append(a, "--")
	return append(a, c.Argv...)
}

// ParseArgs reads launcher arguments as written by Args.
func ParseArgs(args []string) (Config, error) {
	var c Config
	var user, caps string
	fs := flag.NewFlagSet("launch", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.Name, "name", "", "workload name")
	fs.StringVar(&c.Rootfs, "rootfs", "", "root directory")
	fs.StringVar(&c.Workdir, "workdir", "", "working directory")
	fs.StringVar(&user, "user", "", "uid:gid")
	c.Image.flags(fs)
	fs.StringVar(&c.Hostname, "hostname", "", "hostname")
	fs.BoolVar(&c.PrivateNetwork, "private-network", false, "own network namespace")
	fs.StringVar(&c.NetworkOf, "network-of", "", "the container whose network namespace it shares")
	networksFlag(fs, &c.Network, &c.MoreNetworks, &c.Aliases)
	joinFlags(fs, &c.IP, &c.Ports)
	fs.StringVar(&caps, "caps", "", "bounding set")
	fs.BoolVar(&c.Seccomp, "seccomp", true, "seccomp filter")
	fs.BoolVar(&c.NoNewPrivs, "no-new-privileges", true, "no_new_privs")
	fs.StringVar(&c.Ready, "ready", spec.ReadyStarted, "readiness")
	fs.IntVar(&c.ReadyPort, "ready-port", 0, "readiness port")
	fs.DurationVar(&c.ProbeInterval, "probe-interval", time.Second, "readiness check interval")
	fs.DurationVar(&c.ProbeTimeout, "probe-timeout", 5*time.Second, "readiness probe timeout")
	fs.Func("probe", "readiness probe argument", func(s string) error {
		c.Probe = append(c.Probe, s)
		return nil
	})
	fs.BoolVar(&c.ReadOnly, "read-only", false, "read-only root")
	fs.BoolVar(&c.Volatile, "volatile", false, "tmpfs overlay over the root")
	fs.BoolVar(&c.Console, "console", false, "stdin is a console socket: a pty for the payload")
	fs.BoolVar(&c.Init, "init", false, "run the payload under a minimal init")
	fs.Func("userns", "auto or UID:COUNT", func(s string) error {
		c.UserNS = s
		if s == spec.UserNSAuto {
			return nil
		}
		_, err := spec.ParseIDRange(s)
		return err
	})
	fs.Func("mount", "a mount as JSON", func(s string) error {
		m, err := parseMount(s)
		c.Mounts = append(c.Mounts, m)
		return err
	})
	fs.Func("env", "KEY=VALUE", func(s string) error {
		if !strings.Contains(s, "=") {
			return fmt.Errorf("%q is not KEY=VALUE", s)
		}
		c.Env = append(c.Env, s)
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return Config{}, fmt.Errorf("launch: %w", err)
	}
	c.Argv = fs.Args()
	c.PrivateNetwork = c.PrivateNetwork || c.Network != ""
	if err := cmp.Or(c.checkRoot(user), c.checkNetworkOf()); err != nil {
		return Config{}, fmt.Errorf("launch: %w", err)
	}
	switch c.Ready {
	case spec.ReadyStarted, spec.ReadyNotify, spec.ReadyTCP, spec.ReadyHealthy:
	default:
		return Config{}, fmt.Errorf("launch: --ready %q: want started, notify, tcp or healthy", c.Ready)
	}
	for _, m := range c.Mounts {
		if m.Idmap && !spec.HasUserNS(c.UserNS) {
			return Config{}, fmt.Errorf("launch: --mount %s: idmap needs a user namespace (--userns)", m.Target)
		}
	}
	if caps != "" {
		c.Caps = strings.Split(caps, ",")
	}
	for _, name := range c.Caps {
		if _, ok := CapNumber(name); !ok {
			return Config{}, fmt.Errorf("launch: --caps: unknown capability %q", name)
		}
	}
	return c, nil
}

// checkNetworkOf checks that a container sharing another's network
// namespace has none of its own.
func (c *Config) checkNetworkOf() error {
	if c.NetworkOf != "" && c.PrivateNetwork {
		return fmt.Errorf("--network-of %s: a container shares another's network namespace or has its own, not both", c.NetworkOf)
	}
	return nil
}

// WithNetworkOf returns c, which shares the network namespace of
// container other, with other's resolver configuration (the bind mount
// at ResolvConfTarget of its network's), as Docker's --network
// container:NAME shares it, unless c mounts one itself.
func (c Config) WithNetworkOf(other Config) Config {
	has := func(m spec.Mount) bool { return m.Target == ResolvConfTarget }
	if i := slices.IndexFunc(other.Mounts, has); i >= 0 && !slices.ContainsFunc(c.Mounts, has) {
		c.Mounts = append([]spec.Mount{other.Mounts[i]}, c.Mounts...)
	}
	return c
}

// rootArgs renders where the root and the payload's identity come from.
// A rootfs container always names its workdir and user; an image
// container names them only where the spec set them (the image supplies
// the rest, see Image).
func (c Config) rootArgs() []string {
	if c.Image.Ref == "" {
		return []string{"--rootfs", c.Rootfs, "--workdir", c.Workdir, "--user", fmt.Sprintf("%d:%d", c.UID, c.GID)}
	}
	a := c.Image.args()
	if c.Workdir != "" {
		a = append(a, "--workdir", c.Workdir)
	}
	if u := c.Image.user(c.UID, c.GID); u != "" {
		a = append(a, "--user", u)
	}
	return a
}

// checkRoot checks the root and command after parsing, and reads user
// ("UID:GID", or for an image container also "" or a name).
func (c *Config) checkRoot(user string) error {
	if c.Image.Ref != "" {
		return c.Image.check(c, user)
	}
	if c.Rootfs == "" || !strings.HasPrefix(c.Rootfs, "/") {
		return fmt.Errorf("--rootfs must be an absolute path")
	}
	if len(c.Argv) == 0 || c.Argv[0] == "" {
		return fmt.Errorf("no command after --")
	}
	if c.Workdir == "" {
		c.Workdir = "/"
	}
	if user == "" {
		user = "0:0"
	}
	if _, err := fmt.Sscanf(user, "%d:%d", &c.UID, &c.GID); err != nil {
		return fmt.Errorf("--user %q: want UID:GID", user)
	}
	return nil
}

// parseMount reads one --mount value: a JSON spec.Mount with a known type,
// absolute paths and, for a volume, a valid volume name (the spec was
// validated; this guards the command line and the volume store).
func parseMount(s string) (spec.Mount, error) {
	var m spec.Mount
	d := json.NewDecoder(strings.NewReader(s))
	d.DisallowUnknownFields()
	if err := d.Decode(&m); err != nil {
		return m, fmt.Errorf("%q: %w", s, err)
	}
	if m.Type == spec.MountVolume {
		if err := spec.ValidVolumeName(m.Source); err != nil {
			return m, fmt.Errorf("%q: %w", s, err)
		}
	}
	switch {
	case m.Type != spec.MountBind && m.Type != spec.MountTmpfs && m.Type != spec.MountVolume:
		return m, fmt.Errorf("%q: type must be %s, %s or %s", s, spec.MountBind, spec.MountTmpfs, spec.MountVolume)
	case m.Type == spec.MountBind && !strings.HasPrefix(m.Source, "/"):
		return m, fmt.Errorf("%q: a bind mount needs an absolute source", s)

	case !strings.HasPrefix(m.Target, "/") || m.Target == "/":
		return m, fmt.Errorf("%q: target must be an absolute path other than /", s)
	}
	return m, nil
}

// WithTerm is env with TERM=term added unless env sets TERM or term is
// empty: a payload or command given a terminal gets its user's TERM (cove
// run -t, cove exec -t) or Docker's xterm, as docker does.
func WithTerm(env []string, term string) []string {
	if term == "" || slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "TERM=") }) {
		return env
	}
	return append(slices.Clip(env), "TERM="+term)
}
