package api

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/cove-project/cove/internal/image"
)

// pullImage answers POST /images/create?fromImage=&tag=&platform=: the
// pull, streamed as Docker's JSON progress messages. Errors before the
// first message (a name without a registry, an unknown image, a refused
// connection) are normal error answers; later ones end the stream as an
// error message.
func (s *Server) pullImage(c *call) {
	if c.r.URL.Query().Has("fromSrc") {
		s.importImage(c)
		return
	}
	pr, err := pullQuery(c.r.URL.Query())
	if err != nil {
		c.fail(err)
		return
	}
	kc, err := registryAuth(c.r.Header.Get("X-Registry-Auth"))
	if err != nil {
		c.fail(err)
		return
	}
	st, ok := s.imageStore(c)
	if !ok {
		return
	}
	c.w.Header().Set("Content-Type", "application/json")
	repo, id := pullHeader(pr.ref)
	ps := &progressStream{w: c.stream(false), first: dockerMessage{Status: "Pulling from " + repo, ID: id}, statuses: pullStatuses, layers: map[string]string{}}
	before, _ := st.Lookup(pr.ref)
	rec, perr := st.Pull(c.ctx(), pr.ref, image.PullOptions{Keychain: kc, Platform: pr.platform, Progress: ps.event})
	switch {
	case perr != nil && !ps.started:
		c.fail(pullError(pr.asked, perr))
	case perr != nil:
		ps.fail(perr)
	default:
		ps.pulled(pr.ref, rec, before.Digest == rec.Digest)
	}
}

// pullRequest is what a pull asks for.
type pullRequest struct {
	asked    string       // the reference as the client sent it
	ref      string       // what the store pulls (see dockerShortName)
	platform *v1.Platform // nil: this host's
}

// pullQuery reads the pull's reference (fromImage, with tag: a tag, or a
// digest) and platform ("OS/ARCH[/VARIANT]"). An import's parameters
// (repo, changes, message) without fromSrc are refused.
func pullQuery(q url.Values) (pullRequest, *Error) {
	for _, k := range []string{"repo", "changes", "message"} {
		if q.Get(k) != "" {
			return pullRequest{}, errorf(CodeBadRequest, fmt.Sprintf("%s is an import's parameter (with fromSrc=-), not a pull's", k))
		}
	}
	pr := pullRequest{asked: q.Get("fromImage")}
	if pr.asked == "" {
		return pr, errorf(CodeBadRequest, "pull: fromImage is missing: want the image to pull")
	}
	if tag := q.Get("tag"); tag != "" {
		pr.asked = withTag(pr.asked, tag)
	}
	pr.ref = dockerShortName(pr.asked)
	var e *Error
	pr.platform, e = queryPlatform(q, "pull "+pr.asked)
	return pr, e
}

// queryPlatform reads the platform ("OS/ARCH[/VARIANT]") of operation op
// (naming it in the error): nil when the query has none (this host's).
func queryPlatform(q url.Values, op string) (*v1.Platform, *Error) {
	p := q.Get("platform")
	if p == "" {
		return nil, nil
	}
	plat, err := v1.ParsePlatform(p)
	if err != nil {
		return nil, errorf(CodeBadRequest, fmt.Sprintf("%s: platform %.64q: %v", op, p, err))
	}
	return plat, nil
}

// dockerShortName undoes Docker's normalisation of a short name: Docker
// clients may send "docker.io/library/web" for what the user typed as
// "web". cove never assumes docker.io, so such a name is treated as the
// short name it came from: the store refuses it (image.ErrNoRegistry)
// unless search registries are configured.
func dockerShortName(ref string) string {
	for _, host := range []string{"docker.io/", "index.docker.io/"} {
		if rest, ok := strings.CutPrefix(ref, host); ok {
			return strings.TrimPrefix(rest, "library/")
		}
	}
	return ref
}

// withTag puts tag (or a digest, "sha256:…") on ref in place of the tag
// or digest it has.
func withTag(ref, tag string) string {
	repo := repoOf(ref)
	if strings.Contains(tag, ":") {
		return repo + "@" + tag
	}
	return repo + ":" + tag
}

// pullError classifies an error of a pull that sent nothing yet: a bad
// or registry-less name is 400, an image the registry does not have 404.
func pullError(ref string, err error) *Error {
	var bad *name.ErrBadName
	var te *transport.Error
	switch {
	case errors.Is(err, image.ErrNoRegistry):
		return errorf(CodeBadRequest, fmt.Sprintf("pull %s: cove does not assume docker.io: %v", ref, err))
	case errors.As(err, &bad):
		return errorf(CodeBadRequest, err.Error())
	case errors.As(err, &te) && te.StatusCode == http.StatusNotFound:
		return errorf(CodeNotFound, err.Error())
	}
	return asError(err)
}

// registryAuth is the keychain of a pull: the credentials of the
// X-Registry-Auth header (base64url of Docker's AuthConfig JSON) when it
// carries any, else nil (the store's default keychain).
func registryAuth(header string) (authn.Keychain, *Error) {
	if header == "" {
		return nil, nil
	}
	var cfg dockerAuthConfig
	data, err := decodeBase64(header)
	if err == nil {
		err = json.Unmarshal(data, &cfg)
	}
	if err != nil {
		return nil, errorf(CodeBadRequest, fmt.Sprintf("X-Registry-Auth: want base64 of a JSON auth config: %v", err))
	}
	ac := authn.AuthConfig{Username: cfg.Username, Password: cfg.Password, Auth: cfg.Auth,
		IdentityToken: cfg.IdentityToken, RegistryToken: cfg.RegistryToken}
	if ac == (authn.AuthConfig{}) {
		return nil, nil
	}
	return headerKeychain{cfg: ac, host: registryHost(cfg.ServerAddress)}, nil
}

// dockerAuthConfig is Docker's AuthConfig. (authn.AuthConfig cannot be
// embedded: its UnmarshalJSON would take the whole object.)
type dockerAuthConfig struct {
	Username      string `json:"username"`
	Password      string `json:"password"`
	Auth          string `json:"auth"`
	Email         string `json:"email"`
	ServerAddress string `json:"serveraddress"`
	IdentityToken string `json:"identitytoken"`
	RegistryToken string `json:"registrytoken"`
}

// decodeBase64 decodes Docker's base64url, padded or not (some clients
// send standard base64).
func decodeBase64(s string) ([]byte, error) {
	var err error
	for _, enc := range []*base64.Encoding{base64.URLEncoding, base64.RawURLEncoding, base64.StdEncoding} {
		var data []byte
		if data, err = enc.DecodeString(s); err == nil {
			return data, nil
		}
	}
	return nil, err
}

// registryHost reduces a Docker server address ("https://host/v1/",
// "host:5000") to the host[:port] go-containerregistry names it by.
func registryHost(addr string) string {
	addr = strings.TrimPrefix(strings.TrimPrefix(addr, "https://"), "http://")
	addr, _, _ = strings.Cut(addr, "/")
	if addr == "docker.io" || addr == "registry-1.docker.io" {
		return name.DefaultRegistry
	}
	return addr
}

// headerKeychain gives a request's credentials for its server address
// (any registry when it names none), and the default keychain's for
// other registries (mirrors, a search registry).
type headerKeychain struct {
	cfg  authn.AuthConfig
	host string
}

// Resolve implements authn.Keychain.
func (k headerKeychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	if k.host == "" || k.host == target.RegistryStr() {
		return authn.FromConfig(k.cfg), nil
	}
	return image.DefaultKeychain().Resolve(target)
}

// dockerMessage is one message of Docker's JSON progress stream.
type dockerMessage struct {
	Stream         string          `json:"stream,omitempty"`
	Status         string          `json:"status,omitempty"`
	ProgressDetail *dockerProgress `json:"progressDetail,omitempty"`
	Progress       string          `json:"progress,omitempty"`
	ID             string          `json:"id,omitempty"`
	Aux            any             `json:"aux,omitempty"` // a push's result
	ErrorDetail    *dockerError    `json:"errorDetail,omitempty"`
	Error          string          `json:"error,omitempty"`
}

// dockerProgress is a message's byte count.
type dockerProgress struct {
	Current int64 `json:"current,omitempty"`
	Total   int64 `json:"total,omitempty"`
}

// progressStream writes a pull's or a push's progress as Docker's
// messages, one JSON object a line, each flushed. The first message goes
// out with the first event (a pull's once the registry has named the
// image's layers).
type progressStream struct {
	w        io.Writer
	first    dockerMessage
	statuses map[image.LayerState]string // Docker's word for each state; a state without one is not sent
	started  bool
	layers   map[string]string // short layer ID → last status sent
	err      error             // of the first failed write; later ones are skipped
}

// pullStatuses are Docker's words for a pull's layer states.
var pullStatuses = map[image.LayerState]string{image.Waiting: "Pulling fs layer", image.AlreadyExists: "Already exists",
	image.Downloading: "Downloading", image.Extracting: "Download complete", image.Done: "Pull complete"}

// send writes m.
func (p *progressStream) send(m dockerMessage) {
	if !p.started {
		p.started = true
		p.send(p.first)
	}
	if p.err != nil {
		return
	}
	p.err = writeMessage(p.w, m)
}

// writeMessage writes m as Docker's streams carry their messages: JSON
// and CRLF.
func writeMessage(w io.Writer, m dockerMessage) error {
	b, _ := json.Marshal(m) // cannot fail: strings and numbers
	_, err := w.Write(append(b, '\r', '\n'))
	return err
}

// event turns one event of the pull or push into Docker's message for
// its layer; repeats of a status other than a transfer's are dropped.
func (p *progressStream) event(ev image.Progress) {
	id := ev.Digest.Hex[:min(12, len(ev.Digest.Hex))]
	m := dockerMessage{ID: id, ProgressDetail: &dockerProgress{}, Status: p.statuses[ev.State]}
	transfer := ev.State == image.Downloading || ev.State == image.Uploading
	if transfer {
		m.Progress, m.ProgressDetail = progressBar(ev.Done, ev.Total), &dockerProgress{Current: ev.Done, Total: ev.Total}
	}
	if m.Status == "" || p.layers[id] == m.Status && !transfer {
		return
	}
	p.layers[id] = m.Status
	p.send(m)
}

// pulled ends a successful pull of ref with its digest (the index's for
// a multi-platform image, as the tag resolves) and status.
func (p *progressStream) pulled(ref string, rec image.ImageRecord, same bool) {
	d := rec.Digest
	if rec.IndexDigest != nil {
		d = *rec.IndexDigest
	}
	p.send(dockerMessage{Status: "Digest: " + d.String()})
	status := "Status: Downloaded newer image for " + ref
	if same {
		status = "Status: Image is up to date for " + ref
	}
	p.send(dockerMessage{Status: status})
}

// fail ends the stream with err, as Docker does.
func (p *progressStream) fail(err error) {
	msg := strings.ReplaceAll(err.Error(), "\n", "; ")
	p.send(dockerMessage{ErrorDetail: &dockerError{Message: msg}, Error: msg})
}

// pullHeader is what Docker's first message names: the repository without
// its registry, and the tag or digest.
func pullHeader(ref string) (repo, id string) {
	repo, id = repoOf(ref), "latest"
	if rest := ref[len(repo):]; rest != "" {
		id = rest[1:]
	}
	if first, rest, ok := strings.Cut(repo, "/"); ok && (first == "localhost" || strings.ContainsAny(first, ".:")) {
		repo = rest
	}
	return repo, id
}

// progressBar is Docker's progress text: a 50-character bar and the
// sizes, "[=====>       ]  1.23MB/4.56MB".
func progressBar(done, total int64) string {
	if total <= 0 {
		return fmt.Sprintf("%8s", humanSize(done))
	}
	n := min(int(float64(done)/float64(total)*100)/2, 50)
	bar := strings.Repeat("=", n) + ">" + strings.Repeat(" ", 50-n)
	return fmt.Sprintf("[%s] %8s/%s", bar, humanSize(done), humanSize(total))
}

// humanSize is n bytes as Docker prints sizes: four significant digits
// and decimal units (kB, MB, …).
func humanSize(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB", "PB"}
	f, i := float64(n), 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	return fmt.Sprintf("%.4g%s", f, units[i])
}
