package terminal

import "syscall"

var hangup = syscall.SIGHUP
