package monitor

import (
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
)

// Refresh is how often the monitor asks again.
const Refresh = time.Second

// Model is the full-screen monitor: one snapshot, the tab shown, the
// terminal's size. gather runs in a tea.Cmd, off the UI goroutine, so a
// slow daemon never freezes the keys.
type Model struct {
	gather        func() Snapshot
	snap          Snapshot
	tab           int
	width, height int
	help          bool
}

type snapMsg Snapshot
type tickMsg struct{}

// NewModel starts from first and refreshes with gather every Refresh.
func NewModel(first Snapshot, gather func() Snapshot) Model {
	return Model{gather: gather, snap: first, width: 100, height: 30}
}

func (m Model) Init() tea.Cmd { return tick() }

func tick() tea.Cmd { return tea.Tick(Refresh, func(time.Time) tea.Msg { return tickMsg{} }) }

func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.KeyMsg:
		return m.key(msg.String())
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case tickMsg:
		g := m.gather
		return m, func() tea.Msg { return snapMsg(g()) }
	case snapMsg:
		m.snap = Snapshot(msg)
		return m, tick()
	}
	return m, nil
}

// key handles one key: q quits, ? toggles the key list, 1-4 and the
// arrows (or tab, h, l) switch tabs.
func (m Model) key(k string) (tea.Model, tea.Cmd) {
	n := len(Tabs)
	switch k {
	case "q", "ctrl+c", "esc":
		if m.help && k == "esc" {
			m.help = false
			return m, nil
		}
		return m, tea.Quit
	case "?":
		m.help = !m.help
	case "right", "l", "tab":
		m.tab = (m.tab + 1) % n
	case "left", "h", "shift+tab":
		m.tab = (m.tab + n - 1) % n
	case "1", "2", "3", "4":
		m.tab = int(k[0] - '1')
	}
	return m, nil
}

var (
	titleStyle  = lipgloss.NewStyle().Bold(true)
	activeStyle = lipgloss.NewStyle().Bold(true).Reverse(true)
)

// helpText lists the keys.
var helpText = []string{
	"keys:",
	"  1 2 3 4        show the Build, Store, Transfers, Lifecycle tab",
	"  ← → / h l / tab  previous, next tab",
	"  ?              show or hide this list",
	"  q / ctrl+c     quit (the daemon is left as it is)",
}

// View draws the screen, cut to the terminal's width and height.
func (m Model) View() string {
	head := Header(m.snap)
	lines := append([]string{titleStyle.Render(head[0])}, head[1:]...)
	lines = append(lines, "", m.tabBar(), "")
	body := Body(m.snap, m.tab)
	if m.help {
		body = helpText
	}
	room := m.height - len(lines) - 2
	if room < 1 {
		room = 1
	}
	if len(body) > room {
		body = append(body[:room-1:room-1], "  …")
	}
	lines = append(lines, body...)
	for len(lines) < m.height-1 {
		lines = append(lines, "")
	}
	lines = append(lines, "q quit  ? keys  1-4 / ← → tabs  refreshed "+m.snap.At.Format(time.TimeOnly))
	for i, l := range lines {
		lines[i] = truncate(l, m.width)
	}
	return strings.Join(lines, "\n")
}

func (m Model) tabBar() string {
	parts := make([]string, len(Tabs))
	for i, t := range Tabs {
		label := " " + string(rune('1'+i)) + " " + t + " "
		if i == m.tab { // brackets too: a terminal without styles still shows it
			label = activeStyle.Render("[" + string(rune('1'+i)) + " " + t + "]")
		}
		parts[i] = label
	}
	return strings.Join(parts, " ")
}

// truncate cuts a line to width cells (ANSI styles count as none).
func truncate(s string, width int) string {
	if width <= 0 || lipgloss.Width(s) <= width {
		return s
	}
	return lipgloss.NewStyle().MaxWidth(width).Render(s)
}
