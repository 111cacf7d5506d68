// Package greet is the fixture's library.
package greet

import "strings"

// Hello greets name in capitals.
func Hello(name string) string { return "hello " + strings.ToUpper(name) }
