package uploader

import (
	"sync"
	"time"
)

// absentTTL is how long a confirmed miss is remembered: long enough that
// the many wrappers of one build asking for the same absent key (a shape's
// manifest, an entry nobody built yet) cost the remote one request, short
// enough that an entry another machine uploads meanwhile is found on the
// next build.
const absentTTL = 30 * time.Second

// maxAbsent bounds the remembered misses; past it the expired ones go,
// and if none has expired, all of them.
const maxAbsent = 1 << 16

// absentCache remembers keys the remote confirmed absent. A key this
// daemon uploads is forgotten at once.
type absentCache struct {
	mu   sync.Mutex
	keys map[string]time.Time // key → until
	now  func() time.Time
}

func newAbsentCache() *absentCache {
	return &absentCache{keys: map[string]time.Time{}, now: time.Now}
}

// absent reports whether key was confirmed absent within absentTTL.
func (a *absentCache) absent(key string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	until, ok := a.keys[key]
	if ok && a.now().After(until) {
		delete(a.keys, key)
		return false
	}
	return ok
}

// note remembers a confirmed miss.
func (a *absentCache) note(key string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	if len(a.keys) >= maxAbsent {
		for k, until := range a.keys {
			if now.After(until) {
				delete(a.keys, k)
			}
		}
		if len(a.keys) >= maxAbsent {
			clear(a.keys)
		}
	}
	a.keys[key] = now.Add(absentTTL)
}

// forget drops key: it is on the remote now.
func (a *absentCache) forget(key string) {
	a.mu.Lock()
	delete(a.keys, key)
	a.mu.Unlock()
}
