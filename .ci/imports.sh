#!/usr/bin/env bash
# The import rules of the house (CONTRIBUTING.md), checked on every package's imports, its tests'
# included, for Linux, macOS and Windows:
#   - sdk/ (a module of its own) imports nothing of herald outside sdk/;
#   - plugins/ import only sdk/ (and their own packages): never core/, cmd/ or examples/;
#   - examples/ import only sdk/ (and their own packages);
#   - core/ never imports plugins/, cmd/ or examples/.
# Prints every offending import and exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."

mod=github.com/heraldhq/herald
format='{{.ImportPath}}{{range .Imports}} {{.}}{{end}}{{range .TestImports}} test:{{.}}{{end}}{{range .XTestImports}} test:{{.}}{{end}}'

# imports DIR: "package import [test]" lines for every package of the module in DIR, herald's
# imports only; "test" marks an import of the package's tests.
imports() {
	local goos
	for goos in linux darwin windows; do
		(cd "$1" && GOOS=$goos go list -e -f "$format" ./...)
	done | awk -v mod="$mod" '{
		for (i = 2; i <= NF; i++) {
			imp = $i; t = ""
			if (index(imp, "test:") == 1) { imp = substr(imp, 6); t = " test" }
			if (imp == mod || index(imp, mod "/") == 1) print $1, imp t
		}
	}' | sort -u
}

# allowed PKG IMPORT: whether PKG may import IMPORT (both herald import paths).
allowed() {
	local pkg=${1#"$mod"} imp=${2#"$mod"}
	case "$pkg" in
	/sdk | /sdk/*)
		[[ $imp == /sdk || $imp == /sdk/* ]] ;;
	/plugins/*)
		[[ $imp == /sdk || $imp == /sdk/* || $imp == /plugins/* ]] ;;
	/examples/*)
		local own=${pkg#/examples/}
		own=/examples/${own%%/*}
		[[ $imp == /sdk || $imp == /sdk/* || $imp == "$own" || $imp == "$own"/* ]] ;;
	/core/*)
		[[ $imp != /plugins/* && $imp != /cmd/* && $imp != /examples/* ]] ;;
	*)
		true ;;
	esac
}

bad=0
while read -r pkg imp test; do
	if ! allowed "$pkg" "$imp"; then
		if [ "$bad" -eq 0 ]; then
			echo "imports: these imports break the rules (sdk imports only sdk; plugins and examples import only sdk; core never imports plugins, cmd or examples; see CONTRIBUTING.md):" >&2
		fi
		echo "  $pkg${test:+ (its tests)} imports $imp" >&2
		bad=1
	fi
done < <({ imports .; imports sdk; } | sort -u)
if [ "$bad" -ne 0 ]; then
	exit 1
fi
echo "imports: sdk, plugins, examples and core keep to their import rules"
