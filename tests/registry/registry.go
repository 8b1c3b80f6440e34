// Package registry runs Debian's docker-registry (the distribution v2
// registry) for tests, on 127.0.0.1 with its storage in a directory the
// test owns, and builds and pushes test images to it.
package registry

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// Binary is the registry Debian's docker-registry package installs.
const Binary = "/usr/bin/docker-registry"

// Registry is a running registry.
type Registry struct {
	Addr string // 127.0.0.1:PORT
	cmd  *exec.Cmd
}

// Start runs a registry storing its data under dir and waits until it
// answers. Close stops it.
func Start(dir string) (*Registry, error) {
	if _, err := os.Stat(Binary); err != nil {
		return nil, fmt.Errorf("start registry: %w (apt-get install docker-registry)", err)
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "config.yml")
	text := fmt.Sprintf("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), addr)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return nil, fmt.Errorf("start registry: %w", err)
	}
	logFile, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		return nil, fmt.Errorf("start registry: %w", err)
	}
	defer logFile.Close() // the child has its own copy
	cmd := exec.Command(Binary, "serve", conf)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start registry: %w", err)
	}
	r := &Registry{Addr: addr, cmd: cmd}
	if err := r.wait(10 * time.Second); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// freeAddr returns a loopback address with a port nothing listens on.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("pick a registry port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// wait polls GET /v2/ until it answers 200.
func (r *Registry) wait(d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + r.Addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("registry did not answer GET /v2/ within " + d.String())
}

// Close stops the registry (only the process Start started).
func (r *Registry) Close() {
	r.cmd.Process.Kill()
	r.cmd.Wait()
}
