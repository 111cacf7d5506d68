package wrapper

import (
	"bufio"
	"bytes"
	"strings"
)

// DepInfo is what rustc's dep-info file says a crate read.
type DepInfo struct {
	Files []string           // every source file, as rustc wrote the path
	Env   map[string]*string // env-dep variables; nil value: read while unset
}

// ParseDepInfo reads a Makefile-style .d file as rustc writes it: rules
// "target: dep dep ...", then "# env-dep:NAME=value" lines. Spaces in
// paths are escaped as "\ ".
func ParseDepInfo(b []byte) DepInfo {
	d := DepInfo{Env: map[string]*string{}}
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "# env-dep:"); ok {
			name, val, has := strings.Cut(rest, "=")
			if has {
				v := unescapeEnv(val)
				d.Env[name] = &v
			} else {
				d.Env[name] = nil
			}
			continue
		}
		_, deps, ok := cutRule(line)
		if !ok {
			continue
		}
		for _, f := range splitEscaped(deps) {
			if !seen[f] {
				seen[f] = true
				d.Files = append(d.Files, f)
			}
		}
	}
	return d
}

// cutRule splits "target: deps" at the first colon not escaped.
func cutRule(line string) (string, string, bool) {
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case '\\':
			i++
		case ':':
			if i+1 == len(line) || line[i+1] == ' ' {
				return line[:i], line[i+1:], true
			}
		}
	}
	return "", "", false
}

func splitEscaped(s string) []string {
	var out []string
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			out = append(out, cur.String())
			cur.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case s[i] == ' ':
			flush()
		default:
			cur.WriteByte(s[i])
		}
	}
	flush()
	return out
}

// unescapeEnv undoes rustc's escaping of env-dep values (\\ and \n).
func unescapeEnv(v string) string {
	return strings.NewReplacer(`\n`, "\n", `\\`, `\`).Replace(v)
}
