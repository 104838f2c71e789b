// Command flush-custom is a flush-policy plugin for herald ("window"). See README.md.
package main

import "github.com/heraldhq/herald/sdk"

func main() { sdk.Serve(sdk.WithFlushPolicy(New())) }
