#!/usr/bin/env bash
# Runs the .NET SignalR client interop scenario over the transport x protocol matrix.
#
#   test/interop/dotnet/run-matrix.sh                 # build both projects, start the ASP.NET Core
#                                                     # reference server on a free port, run, stop it
#   test/interop/dotnet/run-matrix.sh --url URL       # build the client only and run it against an
#                                                     # already running server (e.g. fastify-signalr),
#                                                     # URL = http://127.0.0.1:PORT/hubs/scenario
#   --no-build                                        # skip `dotnet build` (already built, Release)
#   --out DIR                                         # keep each combo's JSON lines in DIR/<transport>-<protocol>.jsonl
#
# Exit code 0 only if every combo passed. The last line is "matrix: N passed, M failed" (combos).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
SERVER_DIR="$REPO/bench/aspnetcore"
CLIENT_DIR="$HERE"

URL=""
BUILD=1
OUT=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --url) URL="$2"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --out) OUT="$2"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

export DOTNET_CLI_TELEMETRY_OPTOUT=1
export DOTNET_NOLOGO=1
export DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

if [[ $BUILD -eq 1 ]]; then
  echo "# building InteropClient (Release)"
  dotnet build "$CLIENT_DIR/InteropClient.csproj" -c Release -nologo -v quiet
  if [[ -z "$URL" ]]; then
    echo "# building AspNetCoreServer (Release)"
    dotnet build "$SERVER_DIR/AspNetCoreServer.csproj" -c Release -nologo -v quiet
  fi
fi

SERVER_PID=""
SERVER_LOG=""
cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
  fi
  [[ -n "$SERVER_LOG" ]] && rm -f "$SERVER_LOG"
}
trap cleanup EXIT

if [[ -z "$URL" ]]; then
  # Port 0: Kestrel binds a free port and the server prints the real one ("listening http://...").
  SERVER_LOG="$(mktemp)"
  dotnet "$SERVER_DIR/bin/Release/net10.0/AspNetCoreServer.dll" --urls "http://127.0.0.1:0" >"$SERVER_LOG" 2>&1 &
  SERVER_PID=$!
  BASE=""
  for _ in $(seq 1 150); do
    BASE="$(sed -n 's/^listening \(http:\/\/127\.0\.0\.1:[0-9]*\).*/\1/p' "$SERVER_LOG" | head -n1)"
    [[ -n "$BASE" ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [[ -z "$BASE" ]]; then
    echo "reference server did not start:" >&2
    cat "$SERVER_LOG" >&2
    exit 1
  fi
  URL="$BASE/hubs/scenario"
  echo "# reference server (pid $SERVER_PID) at $URL"
fi

[[ -n "$OUT" ]] && mkdir -p "$OUT"

COMBOS=(
  "WebSockets json"
  "ServerSentEvents json"
  "LongPolling json"
  "WebSockets messagepack"
  "LongPolling messagepack"
  "ServerSentEvents messagepack"   # not supported by the .NET client: reports "unsupported"
)

passed=0
failed=0
CLIENT_DLL="$CLIENT_DIR/bin/Release/net10.0/InteropClient.dll"
for combo in "${COMBOS[@]}"; do
  read -r transport protocol <<<"$combo"
  echo "## $transport / $protocol"
  set +e
  lines="$(timeout 70 dotnet "$CLIENT_DLL" --url "$URL" --transport "$transport" --protocol "$protocol")"
  rc=$?
  set -e
  printf '%s\n' "$lines"
  [[ -n "$OUT" ]] && printf '%s\n' "$lines" >"$OUT/$transport-$protocol.jsonl"
  if [[ $rc -eq 0 ]]; then
    passed=$((passed + 1))
  else
    echo "## FAILED: $transport / $protocol (exit $rc)"
    failed=$((failed + 1))
  fi
done

echo "matrix: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
