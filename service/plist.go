package service

import (
	"fmt"
	"slices"
	"strings"
)

// plistValue is what an XML property list holds here: a string, an int, a
// bool, a list of strings, or a dictionary of them.
type plistValue = any

// plistDict is a dictionary; keys are written sorted, as launchd's tools
// and howett.net/plist write them.
type plistDict map[string]plistValue

// marshalPlist renders d as an XML property list, indented with tabs. It is
// a few lines instead of a library because every kache start links the
// service package (for `daemon install`), and a plist library would bring
// encoding/xml's initialisation to every compile. Tests parse the output
// with howett.net/plist.
func marshalPlist(d plistDict) []byte {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">` + "\n")
	b.WriteString(`<plist version="1.0">` + "\n")
	writeValue(&b, d, 1)
	b.WriteString("</plist>\n")
	return []byte(b.String())
}

// writeValue writes v at the given depth of indentation.
func writeValue(b *strings.Builder, v plistValue, depth int) {
	ind := strings.Repeat("\t", depth)
	switch v := v.(type) {
	case string:
		fmt.Fprintf(b, "%s<string>%s</string>\n", ind, xmlEscape(v))
	case int:
		fmt.Fprintf(b, "%s<integer>%d</integer>\n", ind, v)
	case bool:
		fmt.Fprintf(b, "%s<%t/>\n", ind, v)
	case []string:
		b.WriteString(ind + "<array>\n")
		for _, s := range v {
			writeValue(b, s, depth+1)
		}
		b.WriteString(ind + "</array>\n")
	case map[string]string:
		d := plistDict{}
		for k, s := range v {
			d[k] = s
		}
		writeValue(b, d, depth)
	case plistDict:
		b.WriteString(ind + "<dict>\n")
		for _, k := range slices.Sorted(mapKeys(v)) {
			fmt.Fprintf(b, "%s\t<key>%s</key>\n", ind, xmlEscape(k))
			writeValue(b, v[k], depth+1)
		}
		b.WriteString(ind + "</dict>\n")
	default:
		panic(fmt.Sprintf("plist: unsupported value %T", v)) // a programming error, caught by the golden test
	}
}

func mapKeys(d plistDict) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range d {
			if !yield(k) {
				return
			}
		}
	}
}

// xmlEscape escapes the characters XML text may not hold as is.
var xmlEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;").Replace
