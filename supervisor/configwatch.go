package supervisor

import (
	"path/filepath"
	"strings"

	"github.com/fsnotify/fsnotify"
	"github.com/kunobi-ninja/kache/config"
	"github.com/kunobi-ninja/kache/states"
)

// The daemon reads its configuration once. It watches config.toml's
// directory (an editor or an installer replaces the file by rename, which
// drops a watch on the file itself) and, once the file settles: a valid
// configuration whose fingerprint differs from the one in force asks for
// a hand-over to a successor that reads it (config_changed); an invalid
// one is logged and shown in status and changes nothing.

// watchConfig starts the watcher; it returns the function that stops it.
func (d *Daemon) watchConfig() (stop func()) {
	file := d.o.Config.File
	if !d.o.WatchBinary || file == "" || d.o.Getenv == nil {
		return func() {}
	}
	dw, err := newDirWatch([]string{filepath.Dir(file)})
	if err != nil {
		d.o.Log.Warn("config watcher disabled", "file", file, "err", err)
		return func() {}
	}
	dw.run(watchSpec{
		event:    func(ev fsnotify.Event) bool { return sameName(file, ev.Name) },
		settled:  d.configChanged,
		debounce: watchDebounce,
	})
	return dw.stop
}

// configChanged loads the configuration afresh and acts on the outcome.
func (d *Daemon) configChanged() {
	c, err := config.Load(d.o.Getenv)
	switch {
	case err != nil:
		d.setConfigErr(err.Error() + "; the daemon keeps its configuration: fix " + d.o.Config.File)
		d.o.Log.Error("config.toml changed but is invalid; nothing changes", "file", d.o.Config.File, "err", err)
	case c.Fingerprint() == d.o.Config.Fingerprint():
		d.setConfigErr("")
	default:
		d.setConfigErr("")
		keys := config.DiffFields(d.o.Config.Fields(), c.Fields())
		d.send(states.ConfigChanged, "config.toml changed: "+strings.Join(keys, ", "))
	}
}

// configErr is why the last change of config.toml was refused, "" if none.
func (d *Daemon) configErr() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfgErr
}

func (d *Daemon) setConfigErr(s string) {
	d.mu.Lock()
	d.cfgErr = s
	d.mu.Unlock()
}
