package inside

import "testing"

// TestSeccompPolicyAssembles checks that every denied syscall name exists on
// this architecture and the filter assembles.
func TestSeccompPolicyAssembles(t *testing.T) {
	p := SeccompPolicy()
	if _, err := p.Assemble(); err != nil {
		t.Fatalf("default seccomp policy: %v", err)
	}
}
