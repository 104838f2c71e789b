//go:build !race

package eureka_test

// raceDetector is true when the tests run with -race (and so run several times slower).
const raceDetector = false
