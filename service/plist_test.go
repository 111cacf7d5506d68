package service

// launchdJob is the launchd agent, field for field as launchd.plist(5)
// names the keys: the shape tests decode the generated plist into, with
// howett.net/plist, to check it with a real parser.
type launchdJob struct {
	Label                string            `plist:"Label"`
	ProgramArguments     []string          `plist:"ProgramArguments"`
	EnvironmentVariables map[string]string `plist:"EnvironmentVariables,omitempty"`
	RunAtLoad            bool              `plist:"RunAtLoad"`
	KeepAlive            struct {
		SuccessfulExit bool `plist:"SuccessfulExit"`
	} `plist:"KeepAlive"`
	ExitTimeOut       int    `plist:"ExitTimeOut"`
	ThrottleInterval  int    `plist:"ThrottleInterval"`
	ProcessType       string `plist:"ProcessType"`
	StandardErrorPath string `plist:"StandardErrorPath"`
}
