// Package bytesize writes byte counts for people (1.5 MiB), as the CLI's
// progress lines and the monitor show them.
package bytesize

import "fmt"

// Format is n bytes in binary units with one decimal: 900 B, 3.0 MiB.
func Format(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
