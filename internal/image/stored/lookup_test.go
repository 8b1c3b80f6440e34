package stored

import (
	"strings"
	"testing"
)

func TestIsIDPrefix(t *testing.T) {
	for ref, want := range map[string]bool{
		"a": true, "sha256:0f": true, strings.Repeat("f", 64): true, "sha256:" + strings.Repeat("0", 64): true,
		"": false, "sha256:": false, strings.Repeat("f", 65): false, "ABC": false, "web:1": false, "sha512:ab": false, "g1": false,
	} {
		if IsIDPrefix(ref) != want {
			t.Errorf("IsIDPrefix(%q) = %v", ref, !want)
		}
	}
}
