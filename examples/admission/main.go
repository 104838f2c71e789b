// Command admission is an action-handler plugin for herald that refuses registrations breaking
// a rule (required metadata keys, an application-name pattern). See README.md.
package main

import "github.com/heraldhq/herald/sdk"

func main() { sdk.Serve(sdk.WithActionHandler(New())) }
