package tests

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestVolumes: named volumes with the real docker CLI, a cove spec and
// python3-docker. docker volume create, ls and inspect; a container
// writes to a volume with -v NAME:/path and the data outlives docker rm,
// seen by the next container; a new volume gets the image's content at
// its target (owner and mode kept) on first use only; a volume in use,
// by a container or a declared spec, cannot be removed (the refusal
// names the user) and can once unused; docker system df counts volumes;
// prune removes only unused ones; a size is the one driver option; the
// SDK's volumes and df() work.
func TestVolumes(t *testing.T) {
	needAPI(t)
	docker, ref := dockerWithImage(t)
	t.Cleanup(func() {
		docker("rm", "-f", "writer", "holder")
		inside(t, "rm", "-f", "/etc/cove/volspec.toml")
		docker("volume", "rm", "data", "webcopy", "spare", "sdkvol", "sized")
		cove(t, "rmi", "--force", ref)
		cove(t, "image", "prune")
	})
	t.Run("docker CLI", func(t *testing.T) { volumesDockerCLI(t, docker, ref) })
	t.Run("cove spec and copy-up", func(t *testing.T) { volumesSpec(t, docker, ref) })
	t.Run("python3-docker", func(t *testing.T) { volumesSDK(t) })
}

// volumesDockerCLI drives docker volume and docker run -v.
func volumesDockerCLI(t *testing.T, docker func(...string) result, ref string) {
	if r := docker("volume", "create", "--label", "team=db", "data"); r.Code != 0 || r.Stdout != "data\n" {
		t.Fatalf("docker volume create data: exit %d, %q %s", r.Code, r.Stdout, r.Stderr)
	}
	if r := docker("volume", "ls"); !regexp.MustCompile(`(?m)^local\s+data$`).MatchString(r.Stdout) {
		t.Errorf("docker volume ls:\n%s%s", r.Stdout, r.Stderr)
	}
	var insp []struct {
		Name, Driver, Mountpoint, Scope, CreatedAt string
		Labels                                     map[string]string
	}
	r := docker("volume", "inspect", "data")
	if err := json.Unmarshal([]byte(r.Stdout), &insp); err != nil || len(insp) != 1 || insp[0].Driver != "local" ||
		insp[0].Mountpoint != "/var/lib/cove/volumes/data/_data" || insp[0].Scope != "local" || insp[0].Labels["team"] != "db" || insp[0].CreatedAt == "" {
		t.Errorf("docker volume inspect data: %v %+v\n%s%s", err, insp, r.Stdout, r.Stderr)
	}
	if r := docker("run", "--name", "writer", "-u", "0", "-v", "data:/data", ref, "sh", "-c", "echo hi > /data/f"); r.Code != 0 {
		t.Fatalf("docker run -v data:/data: exit %d: %s", r.Code, r.Stderr)
	}
	if r := docker("rm", "writer"); r.Code != 0 {
		t.Errorf("docker rm writer: %s", r.Stderr)
	}
	if r := docker("run", "--rm", "-v", "data:/data:ro", ref, "sh", "-c", "cat /data/f; touch /data/g"); r.Stdout != "hi\n" || r.Code == 0 {
		t.Errorf("a new container reading the volume (read-only): exit %d, stdout %q, stderr %q; want hi and a failed write", r.Code, r.Stdout, r.Stderr)
	}
	if r := docker("run", "-d", "--name", "holder", "-v", "data:/data", ref, "sleep", "300"); r.Code != 0 {
		t.Fatalf("docker run -d holder: %s", r.Stderr)
	}
	if r := docker("volume", "rm", "data"); r.Code == 0 || !strings.Contains(r.Stderr, "in use") || !strings.Contains(r.Stderr, "holder") {
		t.Errorf("docker volume rm of a volume in use: exit %d: %s", r.Code, r.Stderr)
	}
	if r := docker("volume", "create", "spare"); r.Code != 0 {
		t.Fatalf("docker volume create spare: %s", r.Stderr)
	}
	if r := docker("volume", "ls", "-q", "--filter", "dangling=true"); r.Stdout != "spare\n" {
		t.Errorf("docker volume ls --filter dangling=true: %q %s", r.Stdout, r.Stderr)
	}
	if r := docker("system", "df"); !regexp.MustCompile(`(?m)^Local Volumes\s+2\s+1\s`).MatchString(r.Stdout) ||
		!regexp.MustCompile(`(?m)^Images\s+[1-9]\d*\s+1\s`).MatchString(r.Stdout) {
		t.Errorf("docker system df:\n%s%s", r.Stdout, r.Stderr)
	}
	if r := docker("system", "df", "-v"); !regexp.MustCompile(`(?m)^data\s+1\s+3B`).MatchString(r.Stdout) {
		t.Errorf("docker system df -v:\n%s%s", r.Stdout, r.Stderr)
	}
	if r := docker("volume", "prune", "-f"); r.Code != 0 || !strings.Contains(r.Stdout, "spare") || strings.Contains(r.Stdout, "data") {
		t.Errorf("docker volume prune: exit %d:\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if r := docker("rm", "-f", "holder"); r.Code != 0 {
		t.Errorf("docker rm -f holder: %s", r.Stderr)
	}
	if r := docker("volume", "create", "--opt", "size=20M", "sized"); r.Code != 0 {
		t.Errorf("docker volume create --opt size=20M: %s", r.Stderr)
	} else if r := docker("volume", "inspect", "--format", "{{.Options.size}}", "sized"); r.Stdout != "20M\n" {
		t.Errorf("docker volume inspect of a sized volume: Options.size %q %s", r.Stdout, r.Stderr)
	}
	if r := docker("volume", "create", "--opt", "type=nfs", "nfs"); r.Code == 0 || !strings.Contains(r.Stderr, `driver option "type" is not supported`) {
		t.Errorf("docker volume create --opt type=nfs: exit %d: %s", r.Code, r.Stderr)
	}
	if r := docker("volume", "rm", "sized"); r.Code != 0 {
		t.Errorf("docker volume rm sized: %s", r.Stderr)
	}
	if r := docker("run", "--rm", "-v", "a@b:/data", ref, "true"); r.Code != 125 || !strings.Contains(r.Stderr, `invalid volume name "a@b"`) {
		t.Errorf("docker run -v a@b:/data: exit %d: %s", r.Code, r.Stderr)
	}
}

// volumesSpec: a declared cove spec mounts the volume docker wrote and a
// new one at a path the image has content in, which is copied in with
// its mode; while the spec is declared neither volume can be removed.
func volumesSpec(t *testing.T, docker func(...string) result, ref string) {
	sp := `version = 1
kind = "container"
[container]
image = "` + ref + `"
user = "0:0"
command = ["/bin/sh", "-c", "cat /data/f /www/index.html; echo new > /www/new"]
[[container.mount]]
type = "volume"
source = "data"
target = "/data"
[[container.mount]]
type = "volume"
source = "webcopy"
target = "/www"
`
	if r := insideStdin(t, sp, "sh", "-c", "cat > /etc/cove/volspec.toml"); r.Code != 0 {
		t.Fatalf("write the spec: %s", r.Stderr)
	}
	if r := cove(t, "validate", "/etc/cove/volspec.toml"); r.Code != 0 {
		t.Fatalf("cove validate: exit %d: %s", r.Code, r.Stderr)
	}
	// Under another name: /etc/cove/volspec.toml declares volspec.
	if r := cove(t, "run", "--rm", "/etc/cove/volspec.toml"); r.Code == 0 || !strings.Contains(r.Stderr, "the name is taken: /etc/cove/volspec.toml declares it") {
		t.Errorf("cove run of a declared spec under its own name: exit %d: %s", r.Code, r.Stderr)
	}
	if r := cove(t, "run", "--rm", "--name", "volrun", "/etc/cove/volspec.toml"); r.Code != 0 || r.Stdout != "hi\nhi\n" {
		t.Fatalf("cove run of the spec: exit %d, stdout %q, stderr %q; want the volume's and the image's content", r.Code, r.Stdout, r.Stderr)
	}
	if r := inside(t, "stat", "-c", "%a %u", "/var/lib/cove/volumes/webcopy/_data", "/var/lib/cove/volumes/webcopy/_data/index.html"); r.Stdout != "777 0\n644 0\n" {
		t.Errorf("the copied image content: %q %s; want the image's modes", r.Stdout, r.Stderr)
	}
	// Not copied again: the volume keeps what the container wrote and
	// what it removes stays removed.
	inside(t, "rm", "/var/lib/cove/volumes/webcopy/_data/index.html")
	if r := cove(t, "run", "--rm", "--name", "volrun", "/etc/cove/volspec.toml"); !strings.Contains(r.Stderr, "index.html") {
		t.Errorf("a second run saw the image's content again: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	if r := inside(t, "cat", "/var/lib/cove/volumes/webcopy/_data/new"); r.Stdout != "new\n" {
		t.Errorf("the container's write to the volume: %q", r.Stdout)
	}
	if r := docker("volume", "rm", "webcopy"); r.Code == 0 || !strings.Contains(r.Stderr, "volspec") {
		t.Errorf("docker volume rm of a volume a declared spec uses: exit %d: %s", r.Code, r.Stderr)
	}
	bad := strings.Replace(sp, `source = "webcopy"`, `source = "web/../../etc"`, 1)
	insideStdin(t, bad, "sh", "-c", "cat > /tmp/badvol.toml")
	if r := cove(t, "validate", "/tmp/badvol.toml"); r.Code != 2 || !strings.Contains(r.Stderr, `badvol.toml:13:1: container.mount[2].source: invalid volume name "web/../../etc"`) {
		t.Errorf("cove validate of a bad volume name: exit %d: %s", r.Code, r.Stderr)
	}
	inside(t, "rm", "-f", "/etc/cove/volspec.toml", "/tmp/badvol.toml")
	for _, v := range []string{"webcopy", "data"} {
		if r := docker("volume", "rm", v); r.Code != 0 {
			t.Errorf("docker volume rm %s once unused: exit %d: %s", v, r.Code, r.Stderr)
		}
	}
	if r := inside(t, "ls", "-A", "/var/lib/cove/volumes"); r.Stdout != "" {
		t.Errorf("left in the volume store: %q", r.Stdout)
	}
}

// volumesSDK drives python3-docker's volumes and df().
func volumesSDK(t *testing.T) {
	py := `
import docker, json
c = docker.DockerClient(base_url="` + apiHost + `", version="1.41")
v = c.volumes.create(name="sdkvol", labels={"a": "b"})
out = {"created": v.name, "listed": [x.name for x in c.volumes.list()], "got": c.volumes.get("sdkvol").attrs}
df = c.df()
out["df"] = [x["Name"] for x in df["Volumes"]]
c.volumes.get("sdkvol").remove()
try:
    c.volumes.get("sdkvol")
    out["gone"] = False
except docker.errors.NotFound:
    out["gone"] = True
print(json.dumps(out))
`
	r := inside(t, "/usr/bin/python3", "-c", py)
	var got struct {
		Created string
		Listed  []string
		Got     struct {
			Name   string
			Labels map[string]string
		}
		DF   []string
		Gone bool
	}
	if err := json.Unmarshal([]byte(r.Stdout), &got); err != nil {
		t.Fatalf("python3-docker: exit %d, %v: %s%s", r.Code, err, r.Stdout, r.Stderr)
	}
	if got.Created != "sdkvol" || !strings.Contains(strings.Join(got.Listed, " "), "sdkvol") || got.Got.Labels["a"] != "b" ||
		!strings.Contains(strings.Join(got.DF, " "), "sdkvol") || !got.Gone {
		t.Errorf("python3-docker volumes and df: %+v", got)
	}
}

// TestVolumeSize: a declared volume with size = "32M" is a file system of
// its own: a container sees about 32M at the mount (df) and its write of
// 40 MB fails with "No space left on device" while its root still takes
// writes; the data outlives the container, and the mount (gone as after
// a reboot: the next use mounts the volume again); a changed size in the
// volume file is refused; cove volume rm removes the image, the mount and
// the loop device.
func TestVolumeSize(t *testing.T) {
	const file = "/etc/cove/volumes/quota.toml"
	decl := func(size string) {
		t.Helper()
		if r := insideStdin(t, "version = 1\nkind = \"volume\"\n[volume]\nsize = \""+size+"\"\n", "sh", "-c", "mkdir -p /etc/cove/volumes && cat > "+file); r.Code != 0 {
			t.Fatalf("write %s: %s", file, r.Stderr)
		}
	}
	run := func(script string) result {
		t.Helper()
		return cove(t, "run", "--rm", "--rootfs", rootfs, "--volatile", "-v", "quota:/data", "--", "/bin/sh", "-c", script)
	}
	t.Cleanup(func() {
		inside(t, "rm", "-f", file)
		cove(t, "volume", "rm", "quota")
	})
	decl("15M")
	if r := cove(t, "volume", "create", "quota"); r.Code != 2 || !strings.Contains(r.Stderr, file+":4:1: volume.size: volume size 15M is out of range; must be 16M to 16T") {
		t.Errorf("cove volume create with size = \"15M\" declared: exit %d: %s", r.Code, r.Stderr)
	}
	decl("32M")
	if r := cove(t, "volume", "create", "quota"); r.Code != 0 {
		t.Fatalf("cove volume create quota: exit %d: %s", r.Code, r.Stderr)
	}
	if r := cove(t, "volume", "inspect", "quota"); !strings.Contains(r.Stdout, `"size": "32M"`) {
		t.Errorf("cove volume inspect quota: want Options size 32M: %s%s", r.Stdout, r.Stderr)
	}
	r := run("df -k /data | tail -1; dd if=/dev/zero of=/data/big bs=1M count=40 && echo wrote all; echo fine > /root-file && cat /root-file; echo kept > /data/small")
	if !strings.Contains(r.Stderr, "No space left on device") || strings.Contains(r.Stdout, "wrote all") || !strings.Contains(r.Stdout, "fine\n") {
		t.Errorf("writing 40 MB to a 32M volume: exit %d, stdout %q, stderr %q; want ENOSPC and the root writable", r.Code, r.Stdout, r.Stderr)
	}
	if f := strings.Fields(r.Stdout); len(f) < 2 {
		t.Errorf("df in the container: %q", r.Stdout)
	} else if k, _ := strconv.Atoi(f[1]); k < 24<<10 || k > 32<<10 {
		t.Errorf("df in the container: %d KiB, want about 32M: %q", k, r.Stdout)
	}
	if r := inside(t, "sh", "-c", "rm /var/lib/cove/volumes/quota/_data/big; umount /var/lib/cove/volumes/quota/_data"); r.Code != 0 {
		t.Fatalf("free the space and unmount by hand, as a reboot would: %s", r.Stderr)
	}
	if r := run("cat /data/small; df -k /data | tail -1"); r.Code != 0 || !strings.HasPrefix(r.Stdout, "kept\n") {
		t.Errorf("a new container after the mount was gone: exit %d, stdout %q, stderr %q; want the data kept", r.Code, r.Stdout, r.Stderr)
	}
	// In a user namespace the sized volume (an ext4 loop mount) is
	// idmapped as a plain one: root's file is host root's on disk.
	r = cove(t, "run", "--rm", "--rootfs", rootfs, "--volatile", "--userns", "auto", "-v", "quota:/data", "--", "/bin/sh", "-c", "cat /data/small; echo uns > /data/uns; stat -c %u /data/uns")
	if owner := inside(t, "stat", "-c", "%u", "/var/lib/cove/volumes/quota/_data/uns").Stdout; r.Code != 0 || r.Stdout != "kept\n0\n" || owner != "0\n" {
		t.Errorf("the sized volume in a user namespace: exit %d, stdout %q, stderr %q, owner on disk %q; want kept, 0 and 0", r.Code, r.Stdout, r.Stderr, owner)
	}
	decl("64M")
	if r := run("true"); r.Code == 0 || !strings.Contains(r.Stderr, "says size 64M, but volume quota was created with 32M") {
		t.Errorf("a changed size in the volume file: exit %d: %s", r.Code, r.Stderr)
	}
	inside(t, "rm", "-f", file)
	if r := cove(t, "volume", "rm", "quota"); r.Code != 0 {
		t.Fatalf("cove volume rm quota: exit %d: %s", r.Code, r.Stderr)
	}
	for _, c := range [][]string{{"losetup", "-a"}, {"sh", "-c", "grep /var/lib/cove/volumes /proc/self/mountinfo; ls -A /var/lib/cove/volumes"}} {
		if r := inside(t, c[0], c[1:]...); strings.Contains(r.Stdout, "quota") {
			t.Errorf("%s after cove volume rm: %s", strings.Join(c, " "), r.Stdout)
		}
	}
	if out, err := exec.Command("losetup", "-a").CombinedOutput(); err != nil || strings.Contains(string(out), "quota/disk.img") {
		t.Errorf("losetup -a on the host after cove volume rm: %v: %s", err, out)
	}
	if r := cove(t, "volume", "create", "--size", "1M", "tiny"); r.Code != 2 || !strings.Contains(r.Stderr, "must be 16M to 16T") {
		t.Errorf("cove volume create --size 1M: exit %d: %s", r.Code, r.Stderr)
	}
}

// TestDockerAnonymousVolumes: docker run -v PATH, --mount type=volume
// without a source, and an image's VOLUME (nothing else mounted there)
// each get a volume of their own, named with 64 hex digits and labelled
// anonymous, which the container keeps across its restarts and which a
// new volume fills with the image's content; docker rm -v and --rm
// remove them, docker rm alone keeps them (docker volume prune takes
// them then).
func TestDockerAnonymousVolumes(t *testing.T) {
	needAPI(t)
	docker, ref, reg := dockerWithRegistry(t)
	cfg := imageConfig
	cfg.Volumes = map[string]struct{}{"/www": {}}
	withVolume := pushImage(t, reg, "cove/volume:1", cfg, rootfs, filepath.Join(workDir, "layer2"))
	t.Cleanup(func() {
		docker("rm", "-f", "-v", "anon1", "anon2", "anon3")
		docker("volume", "prune", "-f")
		cove(t, "rmi", "--force", ref, withVolume)
		cove(t, "image", "prune")
	})
	before := docker("volume", "ls", "-q").Stdout
	if r := docker("run", "-d", "--name", "anon1", "-u", "0", "-v", "/data", ref, "sh", "-c", "echo hi >> /data/f; sleep 1000"); r.Code != 0 {
		t.Fatalf("docker run -v /data: exit %d: %s", r.Code, r.Stderr)
	}
	vol := anonymousVolumeAt(t, docker, "anon1", "/data")
	if r := docker("restart", "-t", "1", "anon1"); r.Code != 0 {
		t.Fatalf("docker restart anon1: exit %d: %s", r.Code, r.Stderr)
	}
	eventually(t, 10*time.Second, "anon1's second run writing to the same volume", func() bool { return docker("exec", "anon1", "cat", "/data/f").Stdout == "hi\nhi\n" })
	if r := docker("rm", "-f", "-v", "anon1"); r.Code != 0 || docker("volume", "inspect", vol).Code == 0 {
		t.Errorf("docker rm -f -v anon1: exit %d %s; want its volume %s gone", r.Code, r.Stderr, vol)
	}
	if r := docker("run", "--name", "anon2", "--mount", "type=volume,target=/data", ref, "true"); r.Code != 0 {
		t.Fatalf("docker run --mount type=volume,target=/data: exit %d: %s", r.Code, r.Stderr)
	}
	vol = anonymousVolumeAt(t, docker, "anon2", "/data")
	if r := docker("rm", "anon2"); r.Code != 0 || docker("volume", "inspect", vol).Code != 0 {
		t.Errorf("docker rm anon2 (without -v): exit %d %s; want its volume %s kept", r.Code, r.Stderr, vol)
	}
	docker("volume", "rm", vol)
	if r := docker("run", "--name", "anon3", withVolume, "cat", "/www/index.html"); r.Code != 0 || r.Stdout != "hi\n" {
		t.Errorf("docker run of an image with VOLUME /www: exit %d, %q %s; want the image's index.html, copied into the volume", r.Code, r.Stdout, r.Stderr)
	}
	anonymousVolumeAt(t, docker, "anon3", "/www")
	docker("rm", "-v", "anon3")
	if r := docker("run", "--rm", "-v", "/data", ref, "true"); r.Code != 0 {
		t.Errorf("docker run --rm -v /data: exit %d: %s", r.Code, r.Stderr)
	}
	if after := docker("volume", "ls", "-q").Stdout; after != before {
		t.Errorf("volumes after docker rm -v and --rm:\n%s\nwant those before:\n%s", after, before)
	}
}

// anonymousVolumeAt is the volume container name mounts at target, which
// must be anonymous: 64 hex digits, Docker's anonymous label.
func anonymousVolumeAt(t *testing.T, docker func(...string) result, name, target string) string {
	t.Helper()
	vol := strings.TrimSpace(docker("inspect", "-f", `{{range .Mounts}}{{if eq .Destination "`+target+`"}}{{.Name}}{{end}}{{end}}`, name).Stdout)
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(vol) {
		t.Fatalf("%s's volume at %s: %q, want an anonymous volume's name", name, target, vol)
	}
	if r := docker("volume", "inspect", "-f", "{{json .Labels}}", vol); !strings.Contains(r.Stdout, `"com.docker.volume.anonymous":""`) {
		t.Errorf("volume %s's labels: %q %s", vol, r.Stdout, r.Stderr)
	}
	return vol
}
