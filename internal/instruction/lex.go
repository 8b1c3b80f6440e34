package instruction

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// lexer reads an instruction's arguments as a Dockerfile's shell-like
// words: single quotes keep what they hold, double quotes keep spaces and
// expand variables, a backslash escapes the next character, and $NAME,
// ${NAME}, ${NAME:-WORD} and ${NAME:+WORD} expand from env ("K=V").
type lexer struct{ env []string }

// words splits s into words at unquoted white space (split), or reads
// it as one word whose spaces are kept.
func (l lexer) words(s string, split bool) ([]string, error) {
	rs := []rune(s)
	var out []string
	var b strings.Builder
	inWord := false // a word began (a quoted empty string is one)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		if split && unicode.IsSpace(r) {
			if inWord {
				out, inWord = append(out, b.String()), false
				b.Reset()
			}
			continue
		}
		var err error
		switch r {
		case '\\': // escapes the next character; one at the end is dropped
			if i+1 < len(rs) {
				i++
				b.WriteRune(rs[i])
			}
		case '\'':
			i, err = quoted(rs, i, &b)
		case '"':
			i, err = l.doubleQuoted(rs, i, &b)
		case '$':
			i, err = l.dollar(rs, i, &b)
		default:
			b.WriteRune(r)
		}
		if err != nil {
			return nil, err
		}
		inWord = true
	}
	if inWord {
		out = append(out, b.String())
	}
	return out, nil
}

// quoted writes the single-quoted string that opens at rs[i] and returns
// the index of its closing quote.
func quoted(rs []rune, i int, b *strings.Builder) (int, error) {
	for j := i + 1; j < len(rs); j++ {
		if rs[j] == '\'' {
			return j, nil
		}
		b.WriteRune(rs[j])
	}
	return 0, errors.New("a single quote is not closed")
}

// doubleQuoted writes the double-quoted string that opens at rs[i],
// expanded, and returns the index of its closing quote. A backslash
// escapes '"', '\' and '$' there, and is kept before anything else.
func (l lexer) doubleQuoted(rs []rune, i int, b *strings.Builder) (int, error) {
	for j := i + 1; j < len(rs); j++ {
		var err error
		switch r := rs[j]; {
		case r == '"':
			return j, nil
		case r == '\\' && j+1 < len(rs) && strings.ContainsRune("\"\\$", rs[j+1]):
			j++
			b.WriteRune(rs[j])
		case r == '$':
			j, err = l.dollar(rs, j, b)
		default:
			b.WriteRune(r)
		}
		if err != nil {
			return 0, err
		}
	}
	return 0, errors.New("a double quote is not closed")
}

// dollar writes the expansion of the variable at rs[i] ('$') and returns
// the index of its last character; a '$' that names no variable is kept.
func (l lexer) dollar(rs []rune, i int, b *strings.Builder) (int, error) {
	if i+1 < len(rs) && rs[i+1] == '{' {
		end := i + 2
		for end < len(rs) && rs[end] != '}' {
			end++
		}
		if end == len(rs) {
			return 0, errors.New("a ${ is not closed")
		}
		v, err := l.braced(string(rs[i+2 : end]))
		b.WriteString(v)
		return end, err
	}
	end := i + 1
	for end < len(rs) && isNameRune(rs[end], end == i+1) {
		end++
	}
	if end == i+1 {
		b.WriteRune('$')
		return i, nil
	}
	v, _ := l.lookup(string(rs[i+1 : end]))
	b.WriteString(v)
	return end - 1, nil
}

// braced is the expansion of ${EXPR}: NAME, NAME:-WORD (WORD when NAME
// is unset or empty) or NAME:+WORD (WORD when it is set and not empty).
func (l lexer) braced(expr string) (string, error) {
	name, op, word := expr, "", ""
	if i := strings.Index(expr, ":"); i >= 0 {
		name, op, word = expr[:i], expr[i:min(i+2, len(expr))], expr[min(i+2, len(expr)):]
	}
	if !validName(name) {
		return "", fmt.Errorf("${%s}: %q is not a variable's name", expr, name)
	}
	v, _ := l.lookup(name)
	switch op {
	case "":
		return v, nil
	case ":-", ":+":
		ws, err := l.words(word, false)
		if err != nil {
			return "", err
		}
		w := strings.Join(ws, "")
		switch {
		case op == ":-" && v == "":
			return w, nil
		case op == ":+" && v != "":
			return w, nil
		case op == ":+":
			return "", nil
		}
		return v, nil
	}
	return "", fmt.Errorf("${%s}: only ${NAME}, ${NAME:-WORD} and ${NAME:+WORD} are supported", expr)
}

// lookup is NAME's value in the environment, the last one set.
func (l lexer) lookup(name string) (string, bool) {
	for i := len(l.env) - 1; i >= 0; i-- {
		if k, v, _ := strings.Cut(l.env[i], "="); k == name {
			return v, true
		}
	}
	return "", false
}

// validName tells whether s is a variable's name.
func validName(s string) bool {
	for i, r := range s {
		if !isNameRune(r, i == 0) {
			return false
		}
	}
	return s != ""
}

// isNameRune tells whether r may be in a variable's name (first: begin it).
func isNameRune(r rune, first bool) bool {
	return r == '_' || r < unicode.MaxASCII && (unicode.IsLetter(r) || !first && unicode.IsDigit(r))
}
