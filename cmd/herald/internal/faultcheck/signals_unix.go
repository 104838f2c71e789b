//go:build unix

package faultcheck

import "syscall"

// The signals that pause and resume a node (SIGSTOP, SIGCONT).
var sigStop, sigCont = syscall.SIGSTOP, syscall.SIGCONT
