package launch

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"path"
	"regexp"
	"strings"
)

// Image is what the launcher of an image container gets beyond Config's
// common fields. The unit names the image and what the spec set; the
// launcher looks the image up in the store, fills Digest and Layers and
// merges the image's configuration into the Config (WithImage) before the
// container's init runs.
type Image struct {
	Ref        string   // the image's name or digest as the spec gives it; "" for a rootfs container
	StateDir   string   // the container's own directory (ContainerDir): its writable layer, kept across restarts
	Entrypoint []string // the spec's entrypoint; nil: the image's
	UserName   string   // "USER[:GROUP]" by name (or a bare UID), resolved in the image's /etc/passwd and /etc/group inside the container
	UserSet    bool     // UID and GID were given ("UID:GID")
	// Throwaway: the writable layer is removed when the unit stops (cove
	// run --rm, Docker's AutoRemove), so the overlay is mounted volatile
	// (inside.OverlayVolatile): its unmount, when the container's
	// namespaces go at the payload's exit, does not sync the host's file
	// system, which cost tens of milliseconds at every end.
	Throwaway bool
	Digest    string   // filled by the launcher: the manifest digest the store resolved Ref to
	Layers    []string // filled by the launcher: the overlay's lower directories, top layer first
}

// throwawayName is the launcher's flag that sets Image.Throwaway,
// ThrowawayFlag the argument.
const (
	throwawayName = "throwaway"
	ThrowawayFlag = "--" + throwawayName
)

// UpperDir is the directory of an image container's state directory
// (Image.StateDir) that holds its writable layer, the overlay's upper
// directory, kept across restarts (docker diff reads it).
const UpperDir = "upper"

// WorkDir is the directory of an image container's state directory that
// is its overlay's work directory (the overlay's scratch, next to
// UpperDir).
const WorkDir = "work"

// ImageConfig is what an image's configuration supplies to a container
// (the "config" object of an OCI image configuration).
type ImageConfig struct {
	Entrypoint []string
	Cmd        []string
	Env        []string // KEY=VALUE
	WorkingDir string
	User       string // "", "UID", "UID:GID", "NAME", "NAME:GROUP"…
}

// Commands are the entrypoint and command a container of img runs, by
// Docker's rules: an entrypoint (not nil) replaces the image's and drops
// its Cmd; a command (not empty) replaces Cmd.
func (img ImageConfig) Commands(entrypoint, command []string) (entry, cmd []string) {
	entry, cmd = img.Entrypoint, img.Cmd
	if entrypoint != nil {
		entry, cmd = entrypoint, nil
	}
	if len(command) > 0 {
		cmd = command
	}
	return entry, cmd
}

// args renders i as launcher arguments.
func (i Image) args() []string {
	a := []string{"--image", i.Ref, "--state-dir", i.StateDir}
	if i.Entrypoint != nil {
		b, _ := json.Marshal(i.Entrypoint) // cannot fail: strings
		a = append(a, "--entrypoint", string(b))
	}
	if i.Digest != "" {
		a = append(a, "--digest", i.Digest)
	}
	if i.Throwaway {
		a = append(a, ThrowawayFlag)
	}
	for _, l := range i.Layers {
		a = append(a, "--layer", l)
	}
	return a
}

// flags registers i's flags on fs.
func (i *Image) flags(fs *flag.FlagSet) {
	fs.StringVar(&i.Ref, "image", "", "image name or digest")
	fs.StringVar(&i.StateDir, "state-dir", "", "the container's directory")
	fs.StringVar(&i.Digest, "digest", "", "resolved manifest digest")
	fs.BoolVar(&i.Throwaway, throwawayName, false, "the writable layer is removed at the stop: a volatile overlay")
	fs.Func("entrypoint", "entrypoint as a JSON array", func(s string) error {
		return json.Unmarshal([]byte(s), &i.Entrypoint)
	})
	fs.Func("layer", "overlay lower directory", func(s string) error {
		i.Layers = append(i.Layers, s)
		return nil
	})
}

// user renders the payload's identity for --user: "" when neither the
// spec nor the image named one.
func (i Image) user(uid, gid uint32) string {
	switch {
	case i.UserName != "":
		return i.UserName
	case i.UserSet:
		return fmt.Sprintf("%d:%d", uid, gid)
	}
	return ""
}

var numericUser = regexp.MustCompile(`^[0-9]+:[0-9]+$`)

// check checks an image container's arguments and reads user.
func (i *Image) check(c *Config, user string) error {
	switch {
	case c.Rootfs != "":
		return errors.New("--rootfs and --image exclude each other")
	case !path.IsAbs(i.StateDir):
		return errors.New("--state-dir must be an absolute path")
	case len(i.Layers) > 0 && (len(c.Argv) == 0 || c.Argv[0] == ""):
		return errors.New("no command after -- and none from the image")
	}
	for _, l := range i.Layers {
		if !path.IsAbs(l) {
			return fmt.Errorf("--layer %q must be an absolute path", l)
		}
	}
	if numericUser.MatchString(user) {
		i.UserSet = true
		_, err := fmt.Sscanf(user, "%d:%d", &c.UID, &c.GID)
		return err
	}
	i.UserName = user
	return nil
}

// WithImage returns c, an image container's configuration as its unit
// gives it, completed by the image: layers (top first) and digest from the
// store, and Docker's rules for the rest. The spec's entrypoint replaces
// the image's ENTRYPOINT and then drops its CMD; the spec's command
// replaces CMD; the payload runs ENTRYPOINT + CMD. The image's Env comes
// first, the spec's env overrides it by name. WorkingDir and User apply
// where the spec set none ("/" and root otherwise).
func (c Config) WithImage(img ImageConfig, digest string, layers []string) (Config, error) {
	c.Image.Digest, c.Image.Layers = digest, layers
	entry, cmd := img.Commands(c.Image.Entrypoint, c.Argv)
	c.Argv = append(append([]string{}, entry...), cmd...)
	if len(c.Argv) == 0 || c.Argv[0] == "" {
		return c, fmt.Errorf("image %s has no entrypoint or command and the spec sets none", c.Image.Ref)
	}
	c.Env = MergeEnv(img.Env, c.Env)
	if c.Workdir == "" {
		c.Workdir = img.WorkingDir
	}
	if !path.IsAbs(c.Workdir) {
		c.Workdir = path.Join("/", c.Workdir)
	}
	if !c.Image.UserSet && c.Image.UserName == "" && img.User != "" {
		if err := c.Image.check(&c, img.User); err != nil {
			return c, fmt.Errorf("image %s: user %q: %w", c.Image.Ref, img.User, err)
		}
	}
	return c, nil
}

// MergeEnv returns base with over's variables replacing those of the same
// name, and the new ones after.
func MergeEnv(base, over []string) []string {
	out := append([]string{}, base...)
	for _, kv := range over {
		name, _, _ := strings.Cut(kv, "=")
		replaced := false
		for i, old := range out {
			if n, _, _ := strings.Cut(old, "="); n == name {
				out[i], replaced = kv, true
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out
}
