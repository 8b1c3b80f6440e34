package units

import (
	"testing"
	"testing/quick"
)

// TestVariablesRoundTrip: for any argument, what systemd hands the process
// (UnescapeVariables of what cove sent) is the argument itself.
func TestVariablesRoundTrip(t *testing.T) {
	roundTrip := func(arg string) bool { return UnescapeVariables(EscapeVariables(arg)) == arg }
	for _, arg := range []string{"", "$", "$$", "$$$", "${HOME}", "a$b$$c", "$HOME$", "é$€"} {
		if !roundTrip(arg) {
			t.Errorf("round trip of %q gives %q", arg, UnescapeVariables(EscapeVariables(arg)))
		}
	}
	if err := quick.Check(roundTrip, &quick.Config{MaxCount: 10000}); err != nil {
		t.Error(err)
	}
	// Random strings rarely hold '$': check strings made of '$' and one
	// other character too.
	dollars := func(mask uint32, n uint8) bool {
		b := make([]byte, n%32)
		for i := range b {
			b[i] = "$a"[mask>>(i%32)&1]
		}
		return roundTrip(string(b))
	}
	if err := quick.Check(dollars, &quick.Config{MaxCount: 10000}); err != nil {
		t.Error(err)
	}
}

// TestNoUnescapedVariable: an escaped argument has no '$' that systemd
// would expand: every '$' is part of a "$$" pair.
func TestNoUnescapedVariable(t *testing.T) {
	f := func(arg string) bool {
		e := EscapeVariables(arg)
		for i := 0; i < len(e); i++ {
			if e[i] == '$' {
				if i+1 >= len(e) || e[i+1] != '$' {
					return false
				}
				i++
			}
		}
		return true
	}
	if err := quick.Check(f, &quick.Config{MaxCount: 10000}); err != nil {
		t.Error(err)
	}
}
