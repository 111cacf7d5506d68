package buildlog

// Counts sums rustc records: what `kache stats` shows for the whole log
// and the monitor for one build.
type Counts struct {
	Invocations int            `json:"invocations"`
	LocalHits   int            `json:"local_hits"`
	RemoteHits  int            `json:"remote_hits"`
	Misses      int            `json:"misses"`
	Passthrough int            `json:"passthrough"`
	Reasons     map[string]int `json:"passthrough_reasons,omitempty"` // passthroughs by reason
	HitRate     float64        `json:"hit_rate"`                      // hits / (hits + misses)
	SavedMs     float64        `json:"saved_ms"`                      // compile time the hits stood in for
	TookMs      float64        `json:"took_ms"`                       // wall time of all invocations
}

// Add counts r, a rustc record.
func (c *Counts) Add(r Record) {
	c.Invocations++
	c.TookMs += r.Ms
	switch r.Outcome {
	case LocalHit:
		c.LocalHits++
		c.SavedMs += r.SavedMs
	case RemoteHit:
		c.RemoteHits++
		c.SavedMs += r.SavedMs
	case Miss:
		c.Misses++
	default:
		c.Passthrough++
		if c.Reasons == nil {
			c.Reasons = map[string]int{}
		}
		c.Reasons[r.Reason]++
	}
	if n := c.LocalHits + c.RemoteHits + c.Misses; n > 0 {
		c.HitRate = float64(c.LocalHits+c.RemoteHits) / float64(n)
	}
}
