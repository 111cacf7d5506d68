// Command kachetiny is the fixture the cacheprog tests build.
package main

import (
	"os"

	"example.com/kachetiny/greet"
)

func main() { os.Stdout.WriteString(greet.Hello("kache") + "\n") }
