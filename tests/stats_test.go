package tests

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cove-project/cove/tests/harness"
)

// statsJSON is what the test reads of Docker's stats object.
type statsJSON struct {
	Read      time.Time `json:"read"`
	PreRead   time.Time `json:"preread"`
	Name      string    `json:"name"`
	PidsStats struct {
		Current uint64 `json:"current"`
	} `json:"pids_stats"`
	CPUStats    cpuJSON `json:"cpu_stats"`
	PreCPUStats cpuJSON `json:"precpu_stats"`
	MemoryStats struct {
		Usage uint64            `json:"usage"`
		Limit uint64            `json:"limit"`
		Stats map[string]uint64 `json:"stats"`
	} `json:"memory_stats"`
	Networks map[string]json.RawMessage `json:"networks"`
}

// cpuJSON are Docker's cpu_stats.
type cpuJSON struct {
	CPUUsage struct {
		TotalUsage uint64 `json:"total_usage"`
	} `json:"cpu_usage"`
	SystemUsage uint64 `json:"system_cpu_usage"`
	OnlineCPUs  uint32 `json:"online_cpus"`
}

// cpuPercent is the CPU % the docker CLI computes from s.
func (s statsJSON) cpuPercent() float64 {
	cpu := float64(s.CPUStats.CPUUsage.TotalUsage) - float64(s.PreCPUStats.CPUUsage.TotalUsage)
	sys := float64(s.CPUStats.SystemUsage) - float64(s.PreCPUStats.SystemUsage)
	if cpu <= 0 || sys <= 0 {
		return 0
	}
	return cpu / sys * float64(s.CPUStats.OnlineCPUs) * 100
}

// memInUse is the memory the docker CLI shows as used.
func (s statsJSON) memInUse() uint64 {
	m := s.MemoryStats
	for _, k := range []string{"total_inactive_file", "inactive_file"} {
		if v, ok := m.Stats[k]; ok && v < m.Usage {
			return m.Usage - v
		}
	}
	return m.Usage
}

// TestStats: a container limited to 64 MiB that holds about 10 MB and
// burns CPU shows its memory use and limit, CPU %, and processes through
// Docker's stats endpoint (one answer, and the first objects of a
// stream), docker stats --no-stream and the Python SDK's stats(); on the
// host's network it shows no networks, as with Docker. A stopped one gets
// an object of zeros.
func TestStats(t *testing.T) {
	needAPI(t)
	pruneAll(t)
	const name = "statsburn"
	// awk holds a 10 MiB string and spins.
	burn := `["/bin/awk", "BEGIN { s = sprintf(\"%10485760s\", \"x\"); while (1) n++ }"]`
	path := containerSpec(t, filepath.Join(workDir, "stats"), name, rootfs, burn,
		"[resources]\nmemory = \"64M\"\n[service]\nstop_timeout = \"1s\"\n")
	mustCove(t, "apply", path)

	var one statsJSON
	eventually(t, 20*time.Second, "the container to hold 5 MB", func() bool {
		one = statsGet(t, name, "stream=false")
		return one.memInUse() > 5<<20
	})
	checkStats(t, "GET stats?stream=false", one)
	if d := one.Read.Sub(one.PreRead); d < 900*time.Millisecond || d > 3*time.Second {
		t.Errorf("stream=false: samples %s apart (read %s, preread %s), want about a second", d, one.Read, one.PreRead)
	}
	first, second := statsStream(t, name)
	checkStats(t, "the stream's first object", first)
	checkStats(t, "the stream's second object", second)
	if second.PreCPUStats != first.CPUStats {
		t.Errorf("the stream's second precpu_stats %+v are not the first's cpu_stats %+v", second.PreCPUStats, first.CPUStats)
	}
	if one.Networks != nil {
		t.Errorf("a host-network container shows networks: %s", one.Networks)
	}

	dockerBin := harness.DockerCLI(t, sb)
	r := inside(t, dockerBin, "-H", apiHost, "stats", "--no-stream", "--format", "{{json .}}", name)
	var row struct{ Name, CPUPerc, MemUsage, PIDs string }
	if err := json.Unmarshal([]byte(r.Stdout), &row); err != nil || row.Name != name {
		t.Fatalf("docker stats --no-stream: exit %d, %v: %s%s", r.Code, err, r.Stdout, r.Stderr)
	}
	used, limit, _ := strings.Cut(row.MemUsage, " / ")
	if mib := parseMiB(used); mib <= 5 || limit != "64MiB" || percent(row.CPUPerc) <= 0 || atoi(row.PIDs) < 1 {
		t.Errorf("docker stats --no-stream: %+v; want over 5MiB of 64MiB, CPU above 0%% and a process", row)
	}

	py := `import docker, json
c = docker.DockerClient(base_url="` + apiHost + `", version="1.41")
print(json.dumps(c.containers.get("` + name + `").stats(stream=False)))
`
	r = inside(t, "/usr/bin/python3", "-c", py)
	var sdk statsJSON
	if err := json.Unmarshal([]byte(r.Stdout), &sdk); err != nil {
		t.Fatalf("python3-docker container.stats(stream=False): exit %d, %v: %s%s", r.Code, err, r.Stdout, r.Stderr)
	}
	checkStats(t, "python3-docker's stats(stream=False)", sdk)

	mustCove(t, "stop", name)
	if s := statsGet(t, name, "stream=false"); s.Name != "/"+name || s.MemoryStats.Usage != 0 || !s.Read.IsZero() {
		t.Errorf("stats of a stopped container: %+v, want zeros", s)
	}
}

// checkStats asserts what TestStats's container shows.
func checkStats(t *testing.T, what string, s statsJSON) {
	t.Helper()
	if s.Name != "/statsburn" || s.memInUse() <= 5<<20 || s.MemoryStats.Limit != 64<<20 ||
		s.cpuPercent() <= 0 || s.PidsStats.Current < 1 || s.CPUStats.OnlineCPUs < 1 {
		t.Errorf("%s: name %s, memory %d of %d, CPU %.2f%%, %d pids, %d CPUs; want /statsburn, over 5 MB of 64 MiB, CPU above 0%%, a process",
			what, s.Name, s.memInUse(), s.MemoryStats.Limit, s.cpuPercent(), s.PidsStats.Current, s.CPUStats.OnlineCPUs)
	}
}

// apiConn connects to the API's socket through the sandbox's root.
func apiConn(t *testing.T) net.Conn {
	t.Helper()
	c, err := net.Dial("unix", fmt.Sprintf("/proc/%d/root%s", sb.PID(), apiSock))
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(time.Minute))
	return c
}

// statsGet asks for the stats of name with query and decodes the answer.
func statsGet(t *testing.T, name, query string) statsJSON {
	t.Helper()
	status, body := rawRequest(t, "GET /v1.41/containers/"+name+"/stats?"+query+" HTTP/1.1\r\nHost: cove\r\n\r\n")
	var s statsJSON
	if err := json.Unmarshal([]byte(body), &s); status != http.StatusOK || err != nil {
		t.Fatalf("GET stats?%s: %d %v: %s", query, status, err, body)
	}
	return s
}

// statsStream reads the first two objects of name's stats stream.
func statsStream(t *testing.T, name string) (first, second statsJSON) {
	t.Helper()
	c := apiConn(t)
	defer c.Close()
	fmt.Fprintf(c, "GET /v1.41/containers/%s/stats HTTP/1.1\r\nHost: cove\r\n\r\n", name)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET stats (stream): %v %v", resp, err)
	}
	dec := json.NewDecoder(resp.Body)
	for _, s := range []*statsJSON{&first, &second} {
		if err := dec.Decode(s); err != nil {
			t.Fatalf("GET stats (stream): %v", err)
		}
	}
	if d := second.Read.Sub(first.Read); d < 900*time.Millisecond || d > 3*time.Second {
		t.Errorf("the stream's objects came %s apart, want about a second", d)
	}
	return first, second
}

// parseMiB reads a docker stats size ("10.6MiB", "812KiB") in MiB.
func parseMiB(s string) float64 {
	m := regexp.MustCompile(`^([0-9.]+)(B|KiB|MiB|GiB)$`).FindStringSubmatch(s)
	if m == nil {
		return 0
	}
	f, _ := strconv.ParseFloat(m[1], 64)
	return f * map[string]float64{"B": 1.0 / (1 << 20), "KiB": 1.0 / 1024, "MiB": 1, "GiB": 1024}[m[2]]
}

// percent reads "12.34%".
func percent(s string) float64 {
	f, _ := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	return f
}

// atoi reads a number, 0 when it is none.
func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// TestStatsBlockIO: a container that writes and reads 4 MiB with
// O_DIRECT on a bind mount of the host's disk shows at least that much
// block I/O in cove stats and in Docker's blkio_stats (its unit counts
// it: IOAccounting=; on these machines' cgroup v1, whose blkio counters
// stay 0 without a throttle limit, its processes' /proc/PID/io).
func TestStatsBlockIO(t *testing.T) {
	needAPI(t)
	const name = "statsdisk"
	data := filepath.Join(workDir, "statsdisk-data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	dd := shCommand("dd if=/dev/zero of=/data/f bs=1M count=4 oflag=direct && dd if=/data/f of=/dev/null bs=1M iflag=direct && exec sleep 1000")
	path := containerSpec(t, filepath.Join(workDir, "stats"), name, rootfs, dd,
		fmt.Sprintf("[[container.mount]]\nsource = %q\ntarget = \"/data\"\n[service]\nstop_timeout = \"1s\"\n", data))
	mustCove(t, "apply", path)
	t.Cleanup(func() { inside(t, coveBin, "rm", name) })
	var row struct {
		Read  uint64 `json:"block_read_bytes"`
		Write uint64 `json:"block_write_bytes"`
	}
	eventually(t, 20*time.Second, "cove stats to count 4 MiB read and written", func() bool {
		out := inside(t, coveBin, "stats", "--no-stream", "--json", name).Stdout
		return json.Unmarshal([]byte(out), &row) == nil && row.Read >= 4<<20 && row.Write >= 4<<20
	})
	var got struct {
		Blkio struct {
			Bytes []struct {
				Op    string `json:"op"`
				Value uint64 `json:"value"`
			} `json:"io_service_bytes_recursive"`
		} `json:"blkio_stats"`
	}
	_, body := rawRequest(t, "GET /v1.41/containers/"+name+"/stats?stream=false HTTP/1.1\r\nHost: cove\r\n\r\n")
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("stats: %v: %s", err, body)
	}
	sums := map[string]uint64{}
	for _, e := range got.Blkio.Bytes {
		sums[strings.ToLower(e.Op)] += e.Value
	}
	if sums["read"] < 4<<20 || sums["write"] < 4<<20 {
		t.Errorf("Docker's blkio_stats: read %d, write %d bytes, want at least 4 MiB each: %s", sums["read"], sums["write"], body)
	}
}
