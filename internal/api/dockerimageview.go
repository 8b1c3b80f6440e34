package api

import (
	"path"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/cove-project/cove/internal/image"
)

// dockerImageID is an image's Docker ID: its config's digest, as Docker
// has it ("sha256:HEX"; docker images shows 12 digits of HEX).
func dockerImageID(rec image.ImageRecord) string {
	return "sha256:" + rec.ConfigDigest.Hex
}

// repoRefs are an image's Docker RepoTags ("REGISTRY/REPO:TAG") and
// RepoDigests ("REGISTRY/REPO@sha256:…"): its names, split by kind, and
// for every repository it came from or is named in, that repository at
// the digest a pull resolved (the index's for a multi-platform image,
// else the manifest's), as Docker shows them.
func repoRefs(rec image.ImageRecord) (tags, digests []string) {
	tags, digests = []string{}, []string{}
	repos := []string{rec.Repository}
	for _, n := range rec.Names {
		if strings.Contains(n, "@") {
			digests = append(digests, n)
			repos = append(repos, repoOf(n))
			continue
		}
		tags = append(tags, n)
		repos = append(repos, repoOf(n))
	}
	pulled := rec.Digest
	if rec.IndexDigest != nil {
		pulled = *rec.IndexDigest
	}
	for _, repo := range repos {
		if repo != "" {
			digests = append(digests, repo+"@"+pulled.String())
		}
	}
	slices.Sort(digests)
	return tags, slices.Compact(digests)
}

// imageCreated is when the image was built (its config's created), or
// when the pull stored it if the config does not say.
func imageCreated(rec image.ImageRecord) time.Time {
	if t := rec.Config.Created.Time; !t.IsZero() {
		return t
	}
	return rec.Created
}

// imageLabels are the image's config labels, never nil.
func imageLabels(rec image.ImageRecord) map[string]string {
	if rec.Config.Config.Labels == nil {
		return map[string]string{}
	}
	return rec.Config.Config.Labels
}

// dockerImageSummary is one entry of GET /images/json. Sizes are the
// compressed bytes of the image's layers; SharedSize and Containers are
// not computed (-1, as Docker has them unless asked).
type dockerImageSummary struct {
	ID          string            `json:"Id"`
	ParentID    string            `json:"ParentId"`
	RepoTags    []string          `json:"RepoTags"`
	RepoDigests []string          `json:"RepoDigests"`
	Created     int64             `json:"Created"`
	Size        int64             `json:"Size"`
	SharedSize  int64             `json:"SharedSize"`
	VirtualSize int64             `json:"VirtualSize"`
	Labels      map[string]string `json:"Labels"`
	Containers  int64             `json:"Containers"`
}

// imageSummary is rec as an entry of GET /images/json.
func imageSummary(rec image.ImageRecord) dockerImageSummary {
	tags, digests := repoRefs(rec)
	return dockerImageSummary{
		ID: dockerImageID(rec), RepoTags: tags, RepoDigests: digests,
		Created: imageCreated(rec).Unix(), Size: rec.Size, SharedSize: -1, VirtualSize: rec.Size,
		Labels: imageLabels(rec), Containers: -1,
	}
}

// dockerImageInspect is the answer to GET /images/NAME/json.
type dockerImageInspect struct {
	ID            string            `json:"Id"`
	RepoTags      []string          `json:"RepoTags"`
	RepoDigests   []string          `json:"RepoDigests"`
	Parent        string            `json:"Parent"`
	Comment       string            `json:"Comment"`
	Created       string            `json:"Created"`
	DockerVersion string            `json:"DockerVersion"`
	Author        string            `json:"Author"`
	Config        dockerImageConfig `json:"Config"`
	Architecture  string            `json:"Architecture"`
	Variant       string            `json:"Variant,omitempty"`
	Os            string            `json:"Os"`
	OsVersion     string            `json:"OsVersion,omitempty"`
	Size          int64             `json:"Size"`
	VirtualSize   int64             `json:"VirtualSize"`
	GraphDriver   dockerGraphDriver `json:"GraphDriver"`
	RootFS        dockerRootFS      `json:"RootFS"`
	Metadata      struct {
		LastTagTime string `json:"LastTagTime"`
	} `json:"Metadata"`
}

// dockerImageConfig is an inspected image's Config: the image config's.
type dockerImageConfig struct {
	Hostname     string              `json:"Hostname"`
	Domainname   string              `json:"Domainname"`
	User         string              `json:"User"`
	AttachStdin  bool                `json:"AttachStdin"`
	AttachStdout bool                `json:"AttachStdout"`
	AttachStderr bool                `json:"AttachStderr"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts"`
	Tty          bool                `json:"Tty"`
	OpenStdin    bool                `json:"OpenStdin"`
	StdinOnce    bool                `json:"StdinOnce"`
	Env          []string            `json:"Env"`
	Cmd          []string            `json:"Cmd"`
	Healthcheck  *v1.HealthConfig    `json:"Healthcheck,omitempty"`
	Image        string              `json:"Image"`
	Volumes      map[string]struct{} `json:"Volumes"`
	WorkingDir   string              `json:"WorkingDir"`
	Entrypoint   []string            `json:"Entrypoint"`
	OnBuild      []string            `json:"OnBuild"`
	Labels       map[string]string   `json:"Labels"`
	StopSignal   string              `json:"StopSignal,omitempty"`
	Shell        []string            `json:"Shell,omitempty"`
}

// dockerGraphDriver names cove's store and, as overlay2 does, the
// image's layer directories (top first, colon-separated).
type dockerGraphDriver struct {
	Name string            `json:"Name"`
	Data map[string]string `json:"Data"`
}

// dockerRootFS lists the image's layers by diffID, bottom first.
type dockerRootFS struct {
	Type   string   `json:"Type"`
	Layers []string `json:"Layers"`
}

// imageInspect is rec, whose layers are in dirs (top first), as the
// answer to GET /images/NAME/json.
func imageInspect(rec image.ImageRecord, dirs []string) dockerImageInspect {
	tags, digests := repoRefs(rec)
	cf := rec.Config
	d := dockerImageInspect{
		ID: dockerImageID(rec), RepoTags: tags, RepoDigests: digests,
		Created: rfc3339(imageCreated(rec)), DockerVersion: cf.DockerVersion, Author: cf.Author,
		Config: imageConfig(cf.Config), Architecture: rec.Platform.Architecture, Variant: rec.Platform.Variant,
		Os: rec.Platform.OS, OsVersion: rec.Platform.OSVersion, Size: rec.Size, VirtualSize: rec.Size,
		GraphDriver: dockerGraphDriver{Name: "cove", Data: map[string]string{}},
		RootFS:      dockerRootFS{Type: "layers", Layers: diffIDs(rec)},
	}
	if len(dirs) > 0 {
		d.GraphDriver.Data["LowerDir"] = strings.Join(dirs, ":")
	}
	d.Metadata.LastTagTime = rfc3339(rec.Created)
	return d
}

// imageConfig is an image config's runtime part as Docker shows it.
func imageConfig(c v1.Config) dockerImageConfig {
	return dockerImageConfig{
		Hostname: c.Hostname, Domainname: c.Domainname, User: c.User, ExposedPorts: c.ExposedPorts,
		Env: c.Env, Cmd: c.Cmd, Healthcheck: c.Healthcheck, Image: c.Image, Volumes: c.Volumes,
		WorkingDir: c.WorkingDir, Entrypoint: c.Entrypoint, OnBuild: c.OnBuild, Labels: c.Labels,
		StopSignal: c.StopSignal, Shell: c.Shell,
	}
}

// diffIDs are rec's layers' diffIDs, bottom first.
func diffIDs(rec image.ImageRecord) []string {
	out := make([]string, len(rec.Layers))
	for i, l := range rec.Layers {
		out[i] = l.DiffID.String()
	}
	return out
}

// imageFilters are the filter keys GET /images/json implements.
var imageFilters = []string{"reference", "dangling", "label"}

// matchImage reports whether an image, dangling when it has no name (no
// tag and no name by digest), passes the filters: reference (Docker's
// glob, on a tag or digest name or on its repository), dangling (true or
// false), label (KEY or KEY=VALUE).
func (f filters) matchImage(sum dockerImageSummary, dangling bool) bool {
	refs := append(slices.Clone(sum.RepoTags), sum.RepoDigests...)
	return f.labelsMatch(sum.Labels) &&
		f.anyOf("dangling", func(v string) bool { return (v == "true" || v == "1") == dangling }) &&
		f.anyOf("reference", func(v string) bool { return slices.ContainsFunc(refs, func(r string) bool { return refMatch(v, r) }) })
}

// refMatch matches pattern against ref ("REGISTRY/REPO:TAG" or
// "REGISTRY/REPO@DIGEST") and against its repository, as path.Match.
func refMatch(pattern, ref string) bool {
	full, _ := path.Match(pattern, ref)
	short, _ := path.Match(pattern, repoOf(ref))
	return full || short
}

// repoOf is the repository of a reference: what comes before its digest
// or tag (a colon in the registry's host:port is not a tag's).
func repoOf(ref string) string {
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		return ref[:i]
	}
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		return ref[:i]
	}
	return ref
}
