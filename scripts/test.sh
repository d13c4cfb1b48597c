#!/usr/bin/env bash
# npm test: type-check everything (tap only transpiles), run the tap suite, and end with the
# plain "N passed, N failed" line that CI reads (tap's own summary is not one of its formats).
set -o pipefail
cd "$(dirname "$0")/.."
npx tsc --noEmit -p tsconfig.json
tsc_rc=$?
# Lint with neostandard (eslint.config.js), as every @fastify plugin does
npx eslint .
lint_rc=$?
# Build dist/ as published: examples/ import the package by name, which resolves to it
{ npx tsc -p tsconfig.build.json && node scripts/copy-assets.mjs; } || tsc_rc=1
# The coverage gate of the whole suite, lines never below 90 %. A full run on 2026-12-02
# reached lines and statements 96.5, functions 97.8, branches 89.7 (children that load lib/
# through tsx record none: see NO_COVERAGE); the gate sits just under that. Raise it as
# tests are added. A run of chosen files (npm test -- FILE) is not gated.
gate=(--lines=95 --statements=95 --functions=95 --branches=88)
[ "$#" -eq 0 ] && gate_args=(--no-allow-incomplete-coverage "${gate[@]}") || gate_args=()
out=$(mktemp)
node_modules/.bin/tap -R tap "${gate_args[@]}" "$@" | tee "$out"
tap_rc=$?
node -e '
const s = require("fs").readFileSync(process.argv[1], "utf8")
const m = [...s.matchAll(/^# \{ (.*) \}$/gm)].pop()
const o = {}
if (m) for (const kv of m[1].split(", ")) { const [k, v] = kv.split(": "); o[k] = Number(v) }
const typeFail = Number(process.argv[2]) !== 0 ? 1 : 0
if (typeFail) console.log("type check failed (tsc --noEmit)")
const lintFail = Number(process.argv[4]) !== 0 ? 1 : 0
if (lintFail) console.log("lint failed (eslint .)")
// tap fails a run under the gate without a word: say which figure fell short
let covFail = 0
const row = /^All files\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)/m.exec(s)
const gate = Object.fromEntries(process.argv.slice(5).map((a) => /^--(\w+)=([\d.]+)$/.exec(a)).filter(Boolean).map((x) => [x[1], Number(x[2])]))
if (row) {
  const got = { statements: Number(row[1]), branches: Number(row[2]), functions: Number(row[3]), lines: Number(row[4]) }
  const parts = Object.entries(got).map(([k, v]) => `${k} ${v}%` + (gate[k] === undefined ? "" : ` (gate ${gate[k]}%)`))
  console.log(`coverage: ${parts.join(", ")}`)
  const short = Object.keys(gate).filter((k) => got[k] < gate[k])
  if (short.length > 0) { covFail = 1; console.log(`coverage below the gate in scripts/test.sh: ${short.join(", ")}`) }
} else if (Number(process.argv[3]) === 0 && Object.keys(gate).length > 0) {
  console.log("coverage: full (tap prints no table when every file is covered)")
}
console.log(`${o.pass ?? 0} passed, ${(o.fail ?? 0) + typeFail + lintFail + covFail} failed` + (o.skip ? `, ${o.skip} skipped` : ""))' "$out" "$tsc_rc" "$tap_rc" "$lint_rc" "${gate_args[@]}"
rm -f "$out"
[ "$tsc_rc" -eq 0 ] && [ "$lint_rc" -eq 0 ] && [ "$tap_rc" -eq 0 ]
