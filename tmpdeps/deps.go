package tmpdeps

import (
	_ "github.com/BurntSushi/toml"
	_ "github.com/aws/aws-sdk-go-v2/aws"
	_ "github.com/aws/aws-sdk-go-v2/config"
	_ "github.com/aws/aws-sdk-go-v2/service/s3"
	_ "github.com/fsnotify/fsnotify"
	_ "github.com/klauspost/compress/zstd"
	_ "github.com/looplab/fsm"
	_ "github.com/rogpeppe/go-internal/testscript"
	_ "github.com/urfave/cli/v2"
	_ "go.uber.org/goleak"
	_ "gopkg.in/natefinch/lumberjack.v2"
	_ "howett.net/plist"
)
