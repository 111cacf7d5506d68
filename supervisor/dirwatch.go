package supervisor

import (
	"time"

	"github.com/fsnotify/fsnotify"
)

// dirWatch is the daemon's one way of watching directories with fsnotify
// (the binaries', config.toml's and the spool): a watch on a directory,
// not on a file (an installer or an editor renames a new file over the
// old, which drops a watch on the file itself), a goroutine that reads
// its events, and an owner that stops it and waits for that goroutine.
type dirWatch struct {
	w    *fsnotify.Watcher
	done chan struct{} // closed when the goroutine returns; nil until run
}

// watchSpec says what a dirWatch does with its events.
type watchSpec struct {
	// event handles one event; true arms (or re-arms) the debounce.
	event func(fsnotify.Event) bool
	// settled runs once no armed event came for debounce.
	settled  func()
	debounce time.Duration
	// failed handles a watcher error (a queue overflow: events were lost).
	failed func(error)
}

// newDirWatch watches dirs. The kernel queues events from here on, so a
// caller may add the watch before it lists a directory and run it after.
func newDirWatch(dirs []string) (*dirWatch, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	for _, dir := range dirs {
		if err := w.Add(dir); err != nil {
			_ = w.Close()
			return nil, err
		}
	}
	return &dirWatch{w: w}, nil
}

// run starts the goroutine that handles the events as spec says.
func (dw *dirWatch) run(spec watchSpec) {
	dw.done = make(chan struct{})
	go func() {
		defer close(dw.done)
		dw.loop(spec)
	}()
}

func (dw *dirWatch) loop(spec watchSpec) {
	var settle <-chan time.Time
	for {
		select {
		case ev, ok := <-dw.w.Events:
			if !ok {
				return
			}
			if spec.event(ev) {
				settle = time.After(spec.debounce)
			}
		case err, ok := <-dw.w.Errors:
			if !ok {
				return
			}
			if spec.failed != nil {
				spec.failed(err)
			}
		case <-settle:
			settle = nil
			spec.settled()
		}
	}
}

// stop closes the watch and waits for its goroutine, if it ran. Safe on nil.
func (dw *dirWatch) stop() {
	if dw == nil {
		return
	}
	_ = dw.w.Close()
	if dw.done != nil {
		<-dw.done
	}
}
