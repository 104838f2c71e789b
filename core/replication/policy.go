package replication

import "github.com/heraldhq/herald/sdk"

// SizeOrAge is Eureka's flush rule, the pipeline's default and fallback policy: sdk.SizeOrAge, the
// one implementation the built-in "size-or-age" plugin runs too, in-process or out of process.
type SizeOrAge = sdk.SizeOrAge
