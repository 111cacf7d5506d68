// Package rpc is the daemon's wire protocol: newline-delimited JSON over a
// Unix socket, one request line answered by one response line, several per
// connection. It holds the message types, the server that frames and bounds
// them, and the client the CLI and the wrapper use.
package rpc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// ProtocolVersion is sent in every request. A daemon that does not speak the
// client's version answers ErrProtocol instead of failing to decode.
const ProtocolVersion = 1

// MaxFrame caps one request or response line, newline included.
const MaxFrame = 8 << 20

// Op names a request, in snake_case as the Rust kache names them.
type Op string

// The requests a daemon understands.
const (
	OpStatus       Op = "status"
	OpStats        Op = "stats"
	OpBuildStarted Op = "build_started"
	OpUpload       Op = "upload"
	OpRemoteCheck  Op = "remote_check"
	OpPrefetch     Op = "prefetch"
	OpShutdown     Op = "shutdown"
)

// Request is one line sent by a client. Exactly the argument field that
// matches Op is set.
type Request struct {
	Op          Op    `json:"op"`
	Proto       int   `json:"proto"`
	ClientEpoch int64 `json:"client_epoch"` // build epoch of the client binary in ns; 0 = unknown
	// ClientBuild is the Go build ID of the kache-daemon installed beside
	// the client (its content identity); "" = not sent. See docs/lifecycle.md.
	ClientBuild string `json:"client_build,omitempty"`

	Upload       *UploadArgs       `json:"upload,omitempty"`
	RemoteCheck  *RemoteCheckArgs  `json:"remote_check,omitempty"`
	Prefetch     *PrefetchArgs     `json:"prefetch,omitempty"`
	BuildStarted *BuildStartedArgs `json:"build_started,omitempty"`
	Shutdown     *ShutdownArgs     `json:"shutdown,omitempty"`
	Stats        *StatsArgs        `json:"stats,omitempty"`   // optional
	Metrics      *MetricsArgs      `json:"metrics,omitempty"` // optional
	Receipts     *ReceiptsArgs     `json:"receipts,omitempty"`
}

// UploadArgs hands the daemon entries whose intent files the client has
// already written to the spool.
type UploadArgs struct {
	Entries []UploadEntry `json:"entries"`
	// BuildPid is the build the entries come from (cargo, the go
	// command); the daemon starts no upload while it runs, so uploading
	// never takes CPU from the build (docs/lifecycle.md). 0: not a build.
	BuildPid int `json:"build_pid,omitempty"`
}

// UploadEntry is one cache entry: a key and the file or directory holding it.
type UploadEntry struct {
	Key  string `json:"key"`
	Path string `json:"path"`
}

// RemoteCheckArgs asks whether key exists remotely; a hit is downloaded into
// the local store before the answer.
type RemoteCheckArgs struct {
	Key        string `json:"key"`
	DeadlineMs int64  `json:"deadline_ms"`
}

// PrefetchArgs asks for keys to be downloaded into the store in the background.
type PrefetchArgs struct {
	Keys []string `json:"keys"`
}

// BuildStartedArgs records the start of a build session.
type BuildStartedArgs struct {
	SessionID string `json:"session_id"`
}

// ShutdownArgs carries why the daemon is asked to stop (for the log).
type ShutdownArgs struct {
	Reason string `json:"reason,omitempty"`
}

// Response is one line sent by the daemon. OK false comes with Error.
type Response struct {
	OK    bool   `json:"ok"`
	Error *Error `json:"error,omitempty"`

	Status   *Status         `json:"status,omitempty"`
	Stats    *Stats          `json:"stats,omitempty"`
	Found    *bool           `json:"found,omitempty"`
	Upload   *UploadResult   `json:"upload,omitempty"`
	Shutdown *ShutdownResult `json:"shutdown,omitempty"`
	Metrics  *MetricsResult  `json:"metrics,omitempty"`
	Receipts []Receipt       `json:"receipts,omitempty"`
	// Epoch tells the client how the daemon judged its epoch.
	Epoch *EpochVerdict `json:"epoch,omitempty"`
	// Config is the fingerprint of the daemon's configuration inputs
	// (config.InputFingerprint), in every answer, so a client notices at
	// once that its shell configures kache otherwise.
	Config string `json:"config,omitempty"`
}

// ErrorKind is a stable error class that crosses the socket; clients switch
// on it, never on the message.
type ErrorKind string

// The error kinds a daemon answers.
const (
	ErrBadRequest   ErrorKind = "bad_request"     // malformed JSON or missing arguments
	ErrTooLarge     ErrorKind = "frame_too_large" // a line over MaxFrame; the connection is closed
	ErrUnknownOp    ErrorKind = "unknown_op"
	ErrProtocol     ErrorKind = "protocol_mismatch"
	ErrNoRemote     ErrorKind = "no_remote"     // no remote configured; the intent stays in the spool
	ErrShuttingDown ErrorKind = "shutting_down" // the daemon is draining; retry against the next one
	ErrBusy         ErrorKind = "busy"          // connection cap or buffer budget reached
	ErrTimeout      ErrorKind = "timeout"       // the request's deadline passed
	ErrInternal     ErrorKind = "internal"
	// ErrForbidden answers a connection from another user: the daemon
	// serves only its own uid, sends this one line and closes.
	ErrForbidden ErrorKind = "forbidden"
)

// Error is the error object of a failed response.
type Error struct {
	Kind    ErrorKind `json:"kind"`
	Message string    `json:"message"`
	// GivingWayTo, on a shutting_down refusal, is the epoch of the newer
	// kache installation this daemon exits for. A client older than that
	// leaves its intents in the spool for that installation's daemon
	// instead of starting its own, which would make the two flap.
	GivingWayTo int64 `json:"giving_way_to,omitempty"`
}

func (e *Error) Error() string { return string(e.Kind) + ": " + e.Message }

// EpochVerdict compares the client's epoch with the daemon's.
type EpochVerdict struct {
	Daemon   int64  `json:"daemon"`
	Client   int64  `json:"client"`
	Relation string `json:"relation"` // same, client_newer, daemon_newer, unknown
}

// UploadResult says how many entries the daemon queued.
type UploadResult struct {
	Queued int `json:"queued"`
}

// ShutdownResult acknowledges a shutdown; the drain report comes later in
// the daemon's exit record (see docs/files.md).
type ShutdownResult struct {
	Pending int `json:"pending"` // uploads queued or in flight when the drain began
	Pid     int `json:"pid"`     // the daemon that will exit, for the caller to wait on
	// Predecessor is the pid of the daemon that handed over to this one
	// and still drains the uploads it had in flight (0: none). The stop
	// does not wait for it; it exits once they are done or its drain cap
	// passes, and it starts no other daemon.
	Predecessor int `json:"predecessor,omitempty"`
}

// Status is the daemon's answer to OpStatus. Its JSON is documented in
// docs/protocol.md and is part of `kache daemon status --json`.
type Status struct {
	Pid           int        `json:"pid"`
	Version       string     `json:"version"`
	Epoch         int64      `json:"epoch"`
	Build         string     `json:"build,omitempty"` // Go build ID of the running kache-daemon
	Exe           string     `json:"exe"`
	State         string     `json:"state"`
	StateSince    time.Time  `json:"state_since"`
	StateCause    string     `json:"state_cause"`
	StartedAt     time.Time  `json:"started_at"`
	UptimeMs      int64      `json:"uptime_ms"`
	IdleTimeoutS  int64      `json:"idle_timeout_secs"`
	IdleDeadline  *time.Time `json:"idle_deadline,omitempty"` // nil when idle exit is disabled or work holds it off
	Socket        string     `json:"socket"`
	Log           string     `json:"log,omitempty"`
	SocketActive  bool       `json:"socket_activated"`
	RestartReason string     `json:"restart_reason,omitempty"`
	// Handover is why the last hand-over to a newer binary failed, and when
	// it is retried; empty when none failed since the last success.
	Handover string `json:"handover,omitempty"`
	// Config is the fingerprint of the daemon's effective configuration and
	// ConfigFields its values (no secrets); ConfigError says why the last
	// change of config.toml was refused.
	Config       string            `json:"config,omitempty"`
	ConfigFields map[string]string `json:"config_fields,omitempty"`
	ConfigError  string            `json:"config_error,omitempty"`
	Remote       string            `json:"remote"` // description of the configured remote, "none" if unset
	Queue        QueueStats        `json:"queue"`
}

// QueueStats is the upload queue as status shows it.
type QueueStats struct {
	Queued   int    `json:"queued"`
	InFlight int    `json:"in_flight"`
	Failed   int    `json:"failed"`
	Spool    int    `json:"spool"`
	Breaker  string `json:"breaker"`
	// Paused says why uploads are paused (the remote refused the
	// credentials, the clock is skewed, no bucket); empty otherwise.
	Paused string `json:"paused,omitempty"`
	// WaitingForBuild lists the running builds (pids) the uploads wait
	// for; empty when uploads go.
	WaitingForBuild []int `json:"waiting_for_build,omitempty"`
	// Synced counts intents the daemon's group commit made durable.
	Synced int64 `json:"synced"`
	// Uploading lists the oldest uploads in flight (status only).
	Uploading []Upload `json:"uploading,omitempty"`
}

// Stats is the daemon's answer to OpStats.
type Stats struct {
	// Counters are this daemon's counts since it started; on the wire their
	// fields sit at the top level of the object (uploads_completed, …).
	Counters
	LastBuildAt      *time.Time `json:"last_build_at,omitempty"`
	LastBuildSession string     `json:"last_build_session,omitempty"`
	Queue            QueueStats `json:"queue"`
	// Totals are the counters across daemon restarts (absent from an
	// older daemon); the fields above count since this daemon started.
	Totals *Totals `json:"totals,omitempty"`
}

// decodeRequest decodes one line into a Request, or answers bad_request for
// anything that is not a JSON object with an "op": invalid JSON, but also
// null, arrays, numbers and strings, which are valid JSON yet no request
// (null would otherwise decode to an empty request and be reported as a
// protocol mismatch).
func decodeRequest(line []byte) (*Request, *Response) {
	trimmed := bytes.TrimLeft(line, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, Fail(ErrBadRequest, "request is not a JSON object; send one object such as {\"op\":\"status\",\"proto\":%d} per line", ProtocolVersion)
	}
	req := new(Request)
	if err := json.Unmarshal(line, req); err != nil {
		return nil, Fail(ErrBadRequest, "request is not valid JSON (%v); send one JSON object per line", err)
	}
	if req.Op == "" {
		return nil, Fail(ErrBadRequest, "request has no \"op\"; every request names one, such as {\"op\":\"status\",\"proto\":%d}", ProtocolVersion)
	}
	return req, nil
}

// check validates a decoded request's envelope: version first (a newer
// client's ops would otherwise look unknown), then the op, then its
// arguments. It returns nil for a well-formed request.
func check(req *Request) *Response {
	if req.Proto != ProtocolVersion {
		return Fail(ErrProtocol, "client speaks protocol %d but the daemon speaks %d; run `kache daemon restart` to start the daemon from the installed kache, or upgrade kache so client and daemon match",
			req.Proto, ProtocolVersion)
	}
	missing, known := missingArgs(req)
	if !known {
		return Fail(ErrUnknownOp, "unknown op %q; known ops: status, stats, build_started, upload, remote_check, prefetch, shutdown, metrics, receipts", req.Op)
	}
	if missing != "" {
		return Fail(ErrBadRequest, "op %q: %s", req.Op, missing)
	}
	return nil
}

// missingArgs names what an op's arguments lack ("" if nothing) and whether
// the op is known at all.
func missingArgs(req *Request) (string, bool) {
	switch req.Op {
	case OpStatus, OpStats, OpShutdown, OpMetrics:
		return "", true
	case OpReceipts:
		return receiptsMissing(req.Receipts), true
	case OpUpload:
		return uploadMissing(req.Upload), true
	case OpRemoteCheck:
		a := req.RemoteCheck
		if a == nil || a.Key == "" {
			return `needs "remote_check": {"key": ..., "deadline_ms": ...}`, true
		}
		if a.DeadlineMs < 0 {
			return "deadline_ms must not be negative", true
		}
		return "", true
	case OpPrefetch:
		if req.Prefetch == nil || len(req.Prefetch.Keys) == 0 {
			return `needs "prefetch": {"keys": [...]} with at least one key`, true
		}
		return "", true
	case OpBuildStarted:
		if req.BuildStarted == nil {
			return `needs "build_started": {"session_id": ...}`, true
		}
		return "", true
	}
	return "", false
}

func uploadMissing(a *UploadArgs) string {
	if a == nil || len(a.Entries) == 0 {
		return `needs "upload": {"entries": [{"key": ..., "path": ...}]} with at least one entry`
	}
	for i, e := range a.Entries {
		if e.Key == "" || e.Path == "" {
			return fmt.Sprintf("entry %d needs both key and path", i)
		}
	}
	return ""
}

// encodeResponse renders resp as one line. An answer too large for a frame
// is replaced by an internal error rather than sent and rejected.
func encodeResponse(resp *Response) []byte {
	b, err := json.Marshal(resp)
	if err == nil && len(b) >= MaxFrame {
		err = fmt.Errorf("%d bytes, over the %d-byte frame cap", len(b), MaxFrame)
	}
	if err != nil {
		b, _ = json.Marshal(Fail(ErrInternal, "the daemon could not encode its answer: %v", err))
	}
	return append(b, '\n')
}
