// Command transport-custom is a transport plugin for herald ("jsonline": batches as JSON lines
// over TCP, with its own receiving side). See README.md.
package main

import "github.com/heraldhq/herald/sdk"

func main() { sdk.Serve(sdk.WithTransport(New())) }
