#!/usr/bin/env bash
# npm test: type-check everything (tap only transpiles), run the tap suite, and end with the
# plain "N passed, N failed" line that CI reads (tap's own summary is not one of its formats).
set -o pipefail
cd "$(dirname "$0")/.."
npx tsc --noEmit -p tsconfig.json
tsc_rc=$?
# Build dist/ as published: examples/ import the package by name, which resolves to it
npx tsc -p tsconfig.build.json || tsc_rc=1
out=$(mktemp)
node_modules/.bin/tap -R tap "$@" | tee "$out"
tap_rc=$?
node -e '
const s = require("fs").readFileSync(process.argv[1], "utf8")
const m = [...s.matchAll(/^# \{ (.*) \}$/gm)].pop()
const o = {}
if (m) for (const kv of m[1].split(", ")) { const [k, v] = kv.split(": "); o[k] = Number(v) }
const typeFail = Number(process.argv[2]) !== 0 ? 1 : 0
if (typeFail) console.log("type check failed (tsc --noEmit)")
console.log(`${o.pass ?? 0} passed, ${(o.fail ?? 0) + typeFail} failed` + (o.skip ? `, ${o.skip} skipped` : ""))' "$out" "$tsc_rc"
rm -f "$out"
[ "$tsc_rc" -eq 0 ] && [ "$tap_rc" -eq 0 ]
