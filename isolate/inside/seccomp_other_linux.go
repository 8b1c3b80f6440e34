//go:build !amd64

package inside

import (
	seccomp "github.com/elastic/go-seccomp-bpf"

	"github.com/cove-project/cove/isolate/inside/seccomppolicy"
)

// loadSeccomp installs the default filter on every thread of the calling
// process (TSYNC), assembled now: this architecture has no table built
// ahead (seccomp_linux_amd64.go). no_new_privs is restrict's to set.
func loadSeccomp() error {
	return seccomp.LoadFilter(seccomp.Filter{Flag: seccomp.FilterFlagTSync, Policy: seccomppolicy.Policy()})
}
