#!/usr/bin/env bash
# An outside team's plugin module: examples/transport-custom copied into a module of its own that
# requires the SDK alone (replaced by this checkout's sdk/, as a released version would be). It must
# build, pass its tests, keep the go directive the SDK asks for (not the server's), and need nothing
# of herald's outside the SDK.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
want=$(sed -n 's/^go //p' sdk/go.mod)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp examples/transport-custom/*.go "$tmp/"
cd "$tmp"
cat > go.mod <<MOD
module example.com/herald-transport-jsonline

go $want

require github.com/heraldhq/herald/sdk v1.0.0

replace github.com/heraldhq/herald/sdk => $root/sdk
MOD
go mod tidy
got=$(sed -n 's/^go //p' go.mod)
if [ "$got" != "$want" ]; then
	echo "outside-module: go mod tidy moved the go directive from $want to $got" >&2
	exit 1
fi
if grep -v '^replace' go.mod | grep -q 'github.com/heraldhq/herald '; then
	echo "outside-module: the plugin's module requires herald itself, not the SDK alone:" >&2
	cat go.mod >&2
	exit 1
fi
go vet ./...
go test -count=1 ./...
echo "outside-module: a plugin module requiring the SDK alone builds and passes its tests (go $got)"
