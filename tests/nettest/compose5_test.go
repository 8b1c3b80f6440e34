package nettest

import (
	"regexp"
	"strings"
	"testing"

	"github.com/cove-project/cove/tests/harness"
)

// TestDockerComposeV5: docker compose v5 (Go, what Docker ships today;
// scripts/deps builds it) runs TestDockerCompose's project, with a health
// check of db that web's start waits for (composeFileV5), against cove's
// API (version 1.41, so compose connects web to its second network before
// the start): db reports healthy and web starts; the two networks, created
// at the same time, get different subnets; the names resolve as with
// compose 1.29; ps shows all up; the published port answers; stop and
// start of web; a second up -d finds all running (compose compares each
// container's named volumes with what inspect shows); an edit of web's
// page recreates web alone (compose creates the new container under a
// temporary name, removes the old one and renames the new one), twice,
// and it answers as the new one, by the port and by its name; down -v removes
// everything; up in the foreground streams the output until SIGINT stops
// the project; nothing is left. logs shows web's two starts, and nothing,
// without an error, of db, which writes nothing.
func TestDockerComposeV5(t *testing.T) {
	env.Need(t)
	assertClosedWorld(t)
	t.Cleanup(func() { checkNoLeftovers(t) })
	needDocker(t)
	bin := harness.ComposeV5(t, sb)
	compose := composeProject(t, bin, "/tmp/proj/compose.yaml", composeFileV5(), "down", "-v")
	if r := compose("up", "-d"); r.Code != 0 || !strings.Contains(r.Stdout, "proj-db-1 Healthy") {
		t.Fatalf("docker compose up -d (web waiting for db's health): exit %d:\n%s", r.Code, r.Stdout)
	}
	if r := compose("ps"); r.Code != 0 || strings.Count(r.Stdout, " Up ") != 3 || !strings.Contains(r.Stdout, "(healthy)") || !strings.Contains(r.Stdout, "0.0.0.0:8085->80/tcp") {
		t.Errorf("docker compose ps: exit %d:\n%s", r.Code, r.Stdout)
	}
	docker := dockerCLI(t)
	subnet := func(n string) string {
		return docker("network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", n).Stdout
	}
	if front, back := subnet("proj_front"), subnet("proj_back"); front == back {
		t.Errorf("proj_front and proj_back share subnet %q", front)
	}
	composeReaches(t, compose, "-")
	if got := fetchLocal(t, "http://127.0.0.1:8085/"); got != "web" {
		t.Errorf("the published port 8085: %q, want web", got)
	}
	for _, args := range [][]string{{"stop", "web"}, {"start", "web"}} {
		if r := compose(args...); r.Code != 0 {
			t.Errorf("docker compose %s: exit %d:\n%s", args, r.Code, r.Stdout)
		}
	}
	if r := compose("logs", "web"); r.Code != 0 || strings.Count(r.Stdout, "web starting") != 2 {
		t.Errorf("docker compose logs web (two starts): exit %d:\n%s", r.Code, r.Stdout)
	}
	if r := compose("logs", "--tail", "2", "db"); r.Code != 0 || strings.TrimSpace(r.Stdout) != "" {
		t.Errorf("docker compose logs --tail 2 db (it writes nothing): exit %d:\n%s", r.Code, r.Stdout)
	}
	if r := compose("up", "-d"); r.Code != 0 || strings.Count(r.Stdout, " Running") != 3 || strings.Contains(r.Stdout, "Recreate") {
		t.Errorf("a second docker compose up -d: exit %d:\n%s", r.Code, r.Stdout)
	}
	composeRecreates(t, compose)
	if r := compose("down", "-v"); r.Code != 0 {
		t.Fatalf("docker compose down -v: exit %d:\n%s", r.Code, r.Stdout)
	}
	if r := docker("volume", "ls", "-q", "--filter", "label=com.docker.compose.project=proj"); r.Code != 0 || strings.TrimSpace(r.Stdout) != "" {
		t.Errorf("volumes of proj after down -v: exit %d: %q", r.Code, r.Stdout)
	}
	r := inside(t, "sh", "-c", "cd /tmp/proj && DOCKER_HOST=unix:///run/cove/api.sock timeout -s INT 12 "+bin+" up 2>&1")
	if !regexp.MustCompile(`Attaching to .*web-1`).MatchString(r.Stdout) || !regexp.MustCompile(`web-1 +\| web starting`).MatchString(r.Stdout) ||
		!strings.Contains(r.Stdout, "Gracefully") {
		t.Errorf("docker compose up in the foreground, SIGINT after 12 s: exit %d:\n%s", r.Code, r.Stdout)
	}
	if r := compose("ps", "-a"); strings.Count(r.Stdout, "Exited") != 3 {
		t.Errorf("docker compose ps -a after the foreground up stopped: exit %d:\n%s", r.Code, r.Stdout)
	}
}

// composeFileV5 is composeFile with a health check of db (an HTTP GET
// of its page every second) that web's start waits for (depends_on's
// condition service_healthy, compose's usual way to start a database
// first).
func composeFileV5() string {
	f := strings.TrimPrefix(composeFile, "version: \"3.8\"\n")
	f = strings.Replace(f, "    depends_on: [db]\n", "    depends_on:\n      db: {condition: service_healthy}\n", 1)
	return strings.Replace(f, "    volumes: [\"data:/data\"]\n",
		"    volumes: [\"data:/data\"]\n    healthcheck: {test: [\"CMD\", \"wget\", \"-qO-\", \"http://127.0.0.1/\"], interval: 1s, retries: 30}\n", 1)
}

// composeRecreates edits web's page in TestDockerComposeV5's project,
// twice (compose gives the new container the same temporary name each
// time): up -d recreates web alone, the published port and web's name
// (from edge) answer with the new page, and one container of web is
// left.
func composeRecreates(t *testing.T, compose func(args ...string) result) {
	t.Helper()
	for _, page := range []string{"web2", "web3"} {
		must(t, "sed", "-i", "s/echo web[0-9]* >/echo "+page+" >/", "/tmp/proj/compose.yaml")
		if r := compose("up", "-d"); r.Code != 0 || !strings.Contains(r.Stdout, "proj-web-1 Recreated") || strings.Count(r.Stdout, "Recreate") != 2 {
			t.Errorf("docker compose up -d after web's page became %s: exit %d:\n%s", page, r.Code, r.Stdout)
		}
		if got := fetchLocal(t, "http://127.0.0.1:8085/"); got != page {
			t.Errorf("the published port 8085 after web's recreation: %q, want %s", got, page)
		}
		if r := compose("exec", "-T", "edge", "wget", "-qO-", "http://web/"); r.Code != 0 || strings.TrimSpace(r.Stdout) != page {
			t.Errorf("edge fetching http://web/ after web's recreation: exit %d:\n%s, want %s", r.Code, r.Stdout, page)
		}
		if r := dockerCLI(t)("ps", "-a", "--format", "{{.Names}}", "--filter", "label=com.docker.compose.service=web"); strings.TrimSpace(r.Stdout) != "proj-web-1" {
			t.Errorf("web's containers after its recreation: %q %s", r.Stdout, r.Stderr)
		}
	}
}
