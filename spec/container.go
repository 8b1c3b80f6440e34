package spec

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
)

// Defaults returns a spec of kind container named name with every default
// applied: version 1, workdir "/", user 0:0, hostname derived from name
// (see DefaultHostname; "" if name is not valid), network host, restart
// no, restart_delay 1s, stop_timeout 10s, systemd's start limit, ready
// "started", seccomp default, no_new_privileges, no dependencies, no
// health check, not started at boot. Callers building a spec from flags
// fill in Rootfs and Command and then call Validate. VMDefaults is the
// counterpart for kind vm.
func Defaults(name string) *Spec {
	s := &Spec{Name: name, Version: 1, Kind: KindContainer}
	s.Container = containerDefaults(name)
	s.Service = serviceDefaults()
	s.Security = Security{Seccomp: SeccompDefault}
	return s
}

// containerDefaults returns a Container with the defaults for workload
// name. The hostname is derived only from a valid name: for an invalid one
// the name error says all, and a hostname made from it would be reported
// too.
func containerDefaults(name string) *Container {
	c := &Container{Workdir: "/", Network: NetworkHost}
	if ValidName(name) == nil {
		c.Hostname = DefaultHostname(name)
	}
	return c
}

// DefaultHostname returns the hostname a container gets when the spec sets
// none: the workload name made a valid RFC 1123 hostname, i.e. name itself
// for names without '_' (replaced by '-', as the '@' of an instance
// name: web@2's is web-2) and without empty labels or
// labels that start or end with '-' (dropped or trimmed). It returns "" if
// nothing usable is left (never for a valid name).
func DefaultHostname(name string) string {
	var labels []string
	for l := range strings.SplitSeq(strings.NewReplacer("_", "-", instanceSep, "-").Replace(name), ".") {
		if len(l) > 63 {
			l = l[:63]
		}
		if l = strings.Trim(l, "-"); l != "" {
			labels = append(labels, l)
		}
	}
	h := strings.Join(labels, ".")
	if validHostname(h) != "" {
		return ""
	}
	return h
}

// readContainer builds a Container from the [container] table t.
func readContainer(t table, name string) *Container {
	c := containerDefaults(name)
	t.read("rootfs", &c.Rootfs)
	if t.read("image", &c.Image) {
		c.Workdir, c.Pull = "", PullMissing // the image's, unless the spec says
	}
	t.read("entrypoint", &c.Entrypoint)
	t.read("pull", &c.Pull)
	t.read("auto_update", &c.AutoUpdate)
	t.read("command", &c.Command)
	t.read("env", &c.Env)
	t.read("workdir", &c.Workdir)
	var user string
	if t.read("user", &user) {
		u, err := ParseUser(user)
		if err != nil {
			t.fail("user", err.Error())
		}
		c.User = u
	}
	t.read("hostname", &c.Hostname)
	t.read("network", &c.Network)
	t.read("networks", &c.Networks)
	t.read("aliases", &c.Aliases)
	t.read("labels", &c.Labels)
	t.read("ip", &c.IP)
	t.read("ports", &c.Ports)
	t.read("read_only", &c.ReadOnly)
	t.read("volatile", &c.Volatile)
	t.each("mount", func(t table) {
		m := Mount{Type: MountBind}
		t.read("type", &m.Type)
		t.read("source", &m.Source)
		t.read("target", &m.Target)
		t.read("read_only", &m.ReadOnly)
		t.read("size", &m.Size)
		t.read("idmap", &m.Idmap)
		c.Mounts = append(c.Mounts, m)
	})
	return c
}

// container checks c, the container of workload; nameOK says whether
// workload is a valid name (if not, an empty Hostname, which
// DefaultHostname gave, is not reported).
func (v *validator) container(workload string, c *Container, nameOK bool) {
	v.root(c)
	for _, name := range sortedKeys(c.Env) {
		key := "container.env." + tomlKey(name)
		if !validEnvName(name) {
			v.add(key, fmt.Sprintf("invalid environment variable name %q; names must match [A-Za-z_][A-Za-z0-9_]*", name))
		}
		if msg := checkText(c.Env[name]); msg != "" {
			v.add(key, msg)
		}
	}
	if c.Image == "" || c.Workdir != "" {
		v.absPath("container.workdir", c.Workdir)
	}
	if c.User.UID > MaxID || c.User.GID > MaxID {
		v.add("container.user", fmt.Sprintf("uid and gid must be at most %d", uint32(MaxID)))
	}
	if msg := validHostname(c.Hostname); msg != "" && (nameOK || c.Hostname != "") {
		v.add("container.hostname", msg)
	}
	v.containerNetwork(workload, c)
	v.labels("container.labels", c.Labels)
	if c.ReadOnly && c.Volatile {
		v.add("container.volatile", "read_only and volatile exclude each other: a read-only root takes no writes; volatile keeps them in memory until the container stops")
	}
	v.mounts(c.Mounts)
}

// notifyMounts checks that no mount covers NotifyDir, which cove mounts
// for ready = "notify", or is a bind mount of a directory that would
// receive it, or a read-only mount where it cannot be created (a
// writable tmpfs there is fine).
func (v *validator) notifyMounts(ms []Mount) {
	for i, m := range ms {
		k := keyString(key("container", "mount", elem(i+1))) + ".target"
		switch {
		case m.Target == NotifyDir || strings.HasPrefix(m.Target, NotifyDir+"/"):
			v.add(k, fmt.Sprintf(`%q would cover %s, where cove puts the notify socket for ready = "notify"; choose another target`, m.Target, NotifyDir))
		case m.Type == MountBind && strings.HasPrefix(NotifyDir, m.Target+"/"):
			v.add(k, fmt.Sprintf(`a bind mount at %q would get cove's %s directory in %s for ready = "notify"; use a tmpfs there or another target`, m.Target, NotifyDir, m.Source))
		case m.ReadOnly && strings.HasPrefix(NotifyDir, m.Target+"/"):
			v.add(k, fmt.Sprintf(`a read-only mount at %q leaves no room for %s, where cove puts the notify socket for ready = "notify"; make it writable or choose another target`, m.Target, NotifyDir))
		}
	}
}

// cove's own mounts in a container, which a spec's mounts may not cover.
var ownMounts = []string{"/proc", "/sys", "/dev"}

// MountableTarget reports whether a mount may have target (clean and
// absolute): not "/" and not in a directory cove mounts itself, as the
// validation of container.mount requires.
func MountableTarget(target string) bool {
	return path.IsAbs(target) && path.Clean(target) == target && target != "/" &&
		!slices.ContainsFunc(ownMounts, func(own string) bool { return target == own || strings.HasPrefix(target, own+"/") })
}

// mounts checks container.mount: known types, absolute clean paths, an
// absolute source for a bind, a volume's name for a volume and no source
// for a tmpfs, a size only for a tmpfs, and targets other than "/",
// outside cove's own mounts, each used once. A volume need not exist: it
// is created on first use.
func (v *validator) mounts(ms []Mount) {
	targets := make(map[string]int)
	for i, m := range ms {
		k := keyString(key("container", "mount", elem(i+1)))
		switch m.Type {
		case MountBind:
			v.absPath(k+".source", m.Source)
		case MountVolume:
			v.volumeSource(k+".source", m.Source)
		case MountTmpfs:
			if m.Source != "" {
				v.add(k+".source", `a tmpfs has no source; leave source out`)
			}
		default:
			v.add(k+".type", fmt.Sprintf("invalid type %q; allowed: %q (the default), %s", m.Type, mountTypeValues[0], joinQuoted(mountTypeValues[1:], ", ")))
		}
		v.idmapMount(k, m)
		if m.Size != 0 && m.Type != MountTmpfs {
			v.add(k+".size", `only a mount of type "tmpfs" has a size`)
		}
		v.absPath(k+".target", m.Target)
		for _, own := range ownMounts {
			if m.Target == own || strings.HasPrefix(m.Target, own+"/") {
				v.add(k+".target", fmt.Sprintf("%q is in %s, which cove mounts itself; choose another target", m.Target, own))
			}
		}
		switch j, dup := targets[m.Target]; {
		case m.Target == "/":
			v.add(k+".target", `must not be "/"; the root is container.rootfs`)
		case dup:
			v.add(k+".target", fmt.Sprintf("%q is already the target of mount %d", m.Target, j))
		case m.Target != "":
			targets[m.Target] = i + 1
		}
	}
}

// validHostname returns "" if h is a valid RFC 1123 hostname of at most
// MaxHostnameLen bytes, else what is wrong.
func validHostname(h string) string {
	return validLabels(h, "hostname", "-", "a hostname is dot-separated labels of 1 to 63 letters, digits and '-', not starting or ending with '-', at most 64 characters in all")
}

// validAlias returns "" if a is a valid alias (container.aliases): a
// hostname, whose labels may also hold '_' (Docker's service names do),
// else what is wrong.
func validAlias(a string) string {
	return validLabels(a, "alias", "-_", "an alias is dot-separated labels of 1 to 63 letters, digits, '-' and '_', not starting or ending with '-' or '_', at most 64 characters in all")
}

// CheckAlias says what is wrong with a as a name of a container on a
// network (an alias, as container.aliases holds), or nil.
func CheckAlias(a string) error {
	if msg := validAlias(a); msg != "" {
		return errors.New(msg)
	}
	return nil
}

// validLabels returns "" if h is dot-separated labels of 1 to 63
// letters, digits and the bytes of inner (not first or last), of at most
// MaxHostnameLen bytes in all, else what is wrong with it as a what,
// saying rule.
func validLabels(h, what, inner, rule string) string {
	if h == "" {
		return "must not be empty; " + rule
	}
	if len(h) > MaxHostnameLen {
		return fmt.Sprintf("%q is too long; %s", h, rule)
	}
	for l := range strings.SplitSeq(h, ".") {
		ok := l != "" && len(l) <= 63 && !strings.ContainsRune(inner, rune(l[0])) && !strings.ContainsRune(inner, rune(l[len(l)-1]))
		for i := 0; ok && i < len(l); i++ {
			c := l[i]
			ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(inner, c) >= 0
		}
		if !ok {
			return fmt.Sprintf("invalid %s %q; %s", what, h, rule)
		}
	}
	return ""
}

// validEnvName reports whether n matches [A-Za-z_][A-Za-z0-9_]*.
func validEnvName(n string) bool {
	if n == "" || n[0] >= '0' && n[0] <= '9' {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// root checks where the container's root and command come from: a rootfs
// and a command, or an image (whose configuration may supply the
// command), never both.
func (v *validator) root(c *Container) {
	switch {
	case c.Image == "" && c.Rootfs == "":
		v.add("container.rootfs", fmt.Sprintf("missing; required: rootfs, an absolute path such as %s, or image, such as %s", example("container.rootfs"), example("container.image")))
		v.command("container.command", c.Command)
		return
	case c.Image == "":
		v.absPath("container.rootfs", c.Rootfs)
		v.command("container.command", c.Command)
		if c.Entrypoint != nil {
			v.add("container.entrypoint", "only an image container has an entrypoint; with a rootfs, command is the whole command line")
		}
		if c.Pull != "" {
			v.add("container.pull", "only an image container is pulled; set container.image or leave pull out")
		}
		if c.AutoUpdate != "" && c.AutoUpdate != AutoUpdateOff {
			v.add("container.auto_update", "only an image container is updated; set container.image or leave auto_update out")
		}
		return
	case c.Rootfs != "":
		v.add("container.image", "rootfs and image exclude each other: the root is either a directory or an image's layers; leave one out")
	}
	v.imageRef("container.image", "", c.Image)
	if len(c.Command) > 0 {
		v.command("container.command", c.Command)
	}
	for i, arg := range c.Entrypoint {
		if msg := checkText(arg); msg != "" {
			v.add("container.entrypoint", fmt.Sprintf("element %d: %s", i+1, msg))
		}
	}
	v.oneOf("container.pull", "pull policy", c.Pull, "")
	if c.AutoUpdate != "" {
		v.oneOf("container.auto_update", "auto-update policy", c.AutoUpdate, "")
	}
}

// imageRefRE is the shape of an image reference: an optional registry
// host (with a port, or an IPv6 address in brackets), a lower-case
// repository path, an optional tag and an optional digest.
var imageRefRE = lazyRegexp(`^(?:(?:[a-zA-Z0-9.-]+|\[[0-9a-fA-F:]+\])(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$`)

// imageRef checks an image reference's syntax (whether its registry is
// reachable or configured is for the pull to say); prefix is what the key
// writes before the reference ("" or OCIDiskPrefix).
func (v *validator) imageRef(key, prefix, ref string) {
	if len(ref) > 512 || !imageRefRE().MatchString(ref) {
		v.add(key, fmt.Sprintf("invalid image reference %q; write %sREGISTRY/REPOSITORY[:TAG][@sha256:DIGEST] such as %s%s", ref, prefix, prefix, example("container.image")))
	}
}

// SetImage makes c a container of image ref with the defaults that go
// with one: the image's working directory and user, pull = "missing".
// Callers building a spec from flags call it before applying the others.
func (c *Container) SetImage(ref string) {
	c.Image, c.Workdir, c.Pull = ref, "", PullMissing
}
