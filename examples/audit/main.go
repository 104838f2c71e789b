// Command audit is an action-handler plugin for herald that keeps an audit trail of every
// replicated action a node applies. See README.md.
package main

import "github.com/heraldhq/herald/sdk"

func main() { sdk.Serve(sdk.WithActionHandler(New())) }
