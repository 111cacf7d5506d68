package greet

import "testing"

func TestHello(t *testing.T) {
	if got := Hello("go"); got != "hello GO" {
		t.Fatalf("Hello = %q", got)
	}
}
