package api

import (
	"regexp"
	"slices"
	"testing"
)

// TestAnonymousVolumes: each -v PATH (cleaned), each volume mount
// without a source and each image VOLUME that nothing else mounts gets a
// volume name of its own (64 hex digits) in the create's mounts; an
// image VOLUME that no mount can have ("/", in /proc, relative) gets a
// warning instead; what a bind, a tmpfs or a named volume mounts is left.
func TestAnonymousVolumes(t *testing.T) {
	req := dockerCreate{Volumes: map[string]struct{}{"/data/": {}, "/named": {}}}
	req.HostConfig = dockerHostCreate{Binds: []string{"/srv:/bound"}, Tmpfs: map[string]string{"/scratch": ""},
		Mounts: []dockerMountCreate{{Type: "volume", Target: "/m"}, {Type: "volume", Source: "kept", Target: "/named"}}}
	image := map[string]struct{}{"/www": {}, "/bound/": {}, "/scratch": {}, "/": {}, "/proc/x": {}, "relative": {}, "/data": {}}
	names, warnings := anonymousVolumes(&req, image)
	var targets []string
	for _, m := range req.HostConfig.Mounts {
		targets = append(targets, m.Target)
		if m.Source != "kept" && (!regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(m.Source) || !slices.Contains(names, m.Source)) {
			t.Errorf("the volume at %s is %q, want a new anonymous one of %q", m.Target, m.Source, names)
		}
	}
	if want := []string{"/m", "/named", "/data", "/www"}; !slices.Equal(targets, want) || len(names) != 3 {
		t.Errorf("mounts at %q with %d anonymous volumes, want %q with 3", targets, len(names), want)
	}
	if len(warnings) != 3 {
		t.Errorf("warnings %q, want one for each of the image's /, /proc/x and relative", warnings)
	}
}
