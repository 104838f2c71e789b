//go:build !linux

package pluginhost

import "os/exec"

// dieWithParent does nothing where the kernel has no parent-death signal: sdk.Serve ends the
// plugin when it notices that its parent, herald, is gone.
func dieWithParent(*exec.Cmd) {}
