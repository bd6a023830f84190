#!/usr/bin/env bash
# The dashboard in a real browser. Runs the checkout demo on a fresh SQLite file with --serve --port 0, loads
# the dashboard in headless chromium and checks the DOM the page built from the JSON API (every projection of
# the demo with its position, the one dead letter, <body data-loaded="true">), then takes screenshots and
# stops the demo with SIGINT, which must exit 0 (all of its own checks passed).
#   browser_test.sh CHECKOUT_BINARY OUT_DIR CHROMIUM
# OUT_DIR receives the store, demo.log, the DOM dumps, chromium's console messages and the screenshots
# (dashboard-1280x800.png, dashboard-390x844.png, dashboard-<page>.png).
# Exit 77 (ctest: skipped) only when chromium is missing and EVS_ALLOW_SKIP_BROWSER=1; without it, a missing
# chromium is a failure. Needs curl and python3. EVS_TEST_TIME_SCALE (sanitizer builds) stretches the waits.
set -euo pipefail

if [ $# -ne 3 ]; then
  echo "usage: $0 CHECKOUT_BINARY OUT_DIR CHROMIUM" >&2
  exit 2
fi
checkout=$1 out=$2 chromium=$3
scale=${EVS_TEST_TIME_SCALE:-1}
projections=(orders_by_customer revenue_per_day stock_levels warehouse_notification email_confirmation fulfilment)
dead_letter=email_confirmation/1
dead_letter_error="no such mailbox"

# CMake passes EVS_CHROMIUM-NOTFOUND when find_program found no chromium at configure time.
if [ -z "$chromium" ] || [[ "$chromium" == *-NOTFOUND ]] || ! [ -x "$chromium" ]; then
  why="no chromium program (configured: '${chromium}'); install Debian's chromium (./dev test does: apt-get install chromium) and re-run cmake"
  if [ "${EVS_ALLOW_SKIP_BROWSER:-}" = 1 ]; then
    echo "SKIPPED: http_dashboard_browser: $why"
    exit 77
  fi
  echo "FAIL: $why (EVS_ALLOW_SKIP_BROWSER=1 skips this test instead)" >&2
  exit 1
fi
for tool in curl python3; do
  command -v "$tool" >/dev/null || { echo "FAIL: this test needs $tool, which is not on PATH" >&2; exit 1; }
done
[ -x "$checkout" ] || { echo "FAIL: no checkout binary at $checkout (build the checkout target)" >&2; exit 1; }

mkdir -p "$out"
out=$(cd "$out" && pwd)
log=$out/demo.log
console=$out/console.log   # chromium's console messages (INFO:CONSOLE lines) of every run
profile=$out/chromium-profile
rm -rf -- "$profile" "$out"/dom-*.html "$out"/dashboard-*.png "$out"/chromium-*.err "$log" "$console"
mkdir -p "$profile"
: >"$console"

demo_pid=
dom=
cleanup() {
  if [ -n "$demo_pid" ] && kill -0 "$demo_pid" 2>/dev/null; then
    kill -TERM "$demo_pid" 2>/dev/null || true
    for _ in $(seq 50); do demo_running || break; sleep 0.1; done
    kill -KILL "$demo_pid" 2>/dev/null || true
    wait "$demo_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

diagnostics() {
  echo "---- last 40 lines of the demo's output ($log)" >&2
  tail -n 40 "$log" >&2 || true
  if [ -n "$dom" ] && [ -f "$dom" ]; then
    echo "---- the DOM chromium dumped ($dom)" >&2
    cat "$dom" >&2
    echo >&2
  fi
  if [ -s "$console" ]; then
    echo "---- chromium's console messages ($console)" >&2
    cat "$console" >&2
  fi
}

die() {
  echo "FAIL: $*" >&2
  diagnostics
  exit 1
}

# True while the demo runs (a zombie, exited but not yet waited for, counts as stopped).
demo_running() {
  local state
  state=$(awk '{print $3}' "/proc/$demo_pid/stat" 2>/dev/null) || return 1
  [ "$state" != Z ]
}

# Headless chromium on the page: loads it, runs its scripts for BUDGET ms of virtual time (virtual time stands
# still while a fetch is on the wire, so the page's API calls are answered within it), then does what "$@" asks
# (--dump-dom to stdout, --screenshot=FILE). Its console messages go to $console. The sandbox needs a non-root
# user and user namespaces: this is our own page, so it runs without.
browser() {
  local budget=$1 err=$2
  shift 2
  local status=0
  timeout --kill-after=10 $((60 * scale)) "$chromium" --headless=new --no-sandbox --disable-gpu --no-first-run \
    --no-default-browser-check --disable-extensions --disable-background-networking --disable-sync --mute-audio \
    --user-data-dir="$profile" --enable-logging=stderr --v=0 --virtual-time-budget="$budget" "$@" 2>"$err" ||
    status=$?
  grep -F ':CONSOLE' "$err" >>"$console" || true
  if [ "$status" -ne 0 ]; then
    echo "chromium $* exited with status $status; its messages (dbus noise left out):" >&2
    grep -vE 'dbus|unexpected operator' "$err" | tail -n 30 >&2 || true
  fi
  return "$status"
}

# ---- 1. the demo, serving the dashboard once its story is told
started=$(date +%s)
"$checkout" demo "$out/checkout.db" --fresh --short --serve --port 0 >"$log" 2>&1 &
demo_pid=$!
deadline=$((started + 120 * scale))
until grep -qs 'until Ctrl-C' "$log"; do
  demo_running || die "the demo exited before it served the dashboard (no 'until Ctrl-C' line)"
  [ "$(date +%s)" -lt "$deadline" ] ||
    die "the demo printed no 'serving the dashboard at ... until Ctrl-C' line within $((120 * scale)) s"
  sleep 0.5
done
url=$(sed -n 's/^serving the dashboard at \(http:[^ ]*\) until Ctrl-C$/\1/p' "$log" | tail -n 1)
[[ "$url" =~ ^http://127\.0\.0\.1:[0-9]+/#token=[^[:space:]]+$ ]] ||
  die "the 'until Ctrl-C' line has no dashboard address of the form http://127.0.0.1:PORT/#token=TOKEN (got '$url')"
grep -qF "  dashboard: $url (metrics at " "$log" ||
  die "the demo's first 'dashboard: ...' line does not show the address it serves at the end ($url)"
base=${url%%#*}   # http://127.0.0.1:PORT/
echo "demo: story told in $(($(date +%s) - started)) s, dashboard at $base"

# ---- 2. what the API says: each projection's position, the dead letters
curl_api() { curl -sS --fail-with-body --max-time $((10 * scale)) "${base}api/$1"; }
json=$(curl_api projections) || die "GET ${base}api/projections failed: $json"
api_positions=$(python3 -c '
import json, sys
for p in json.load(sys.stdin)["projections"]:
    print(p["name"], p["position"])
' <<<"$json") || die "/api/projections: not the JSON the API notes describe: $json"
json=$(curl_api dead-letters) || die "GET ${base}api/dead-letters failed: $json"
api_dead_letters=$(python3 -c '
import json, sys
for d in json.load(sys.stdin)["dead_letters"]:
    print("%s/%s" % (d["projection"], d["id"]), d["status"], d["error"].replace("\n", " "))
' <<<"$json") || die "/api/dead-letters: not the JSON the API notes describe: $json"

# ---- 3. the overview page's DOM, once its data has loaded
# One section of the dump (by id) with one <tr> per line; one row with one <td> per line.
section_rows() { sed -e 's/<section/\n&/g' -e 's,</section>,&\n,g' "$dom" | grep "^<section id=\"$1\"" | sed 's/<tr/\n&/g'; }
cells() { echo "${1//<td/$'\n'<td}"; }

attempts=3
for attempt in $(seq "$attempts"); do
  dom=$out/dom-overview-$attempt.html
  t0=$(date +%s%N)
  browser $((4000 * attempt)) "$out/chromium-dump-$attempt.err" --dump-dom "$url" >"$dom" ||
    die "chromium could not load $url (attempt $attempt)"
  echo "chromium --dump-dom of the overview: $((($(date +%s%N) - t0) / 1000000)) ms"
  grep -q '<body[^>]* data-loaded="true"' "$dom" && break
  [ "$attempt" -lt "$attempts" ] ||
    die "after $attempts loads of the overview, <body> still lacks data-loaded=\"true\": the page never finished its first data load"
  echo "attempt $attempt of $attempts: <body data-loaded=\"true\"> is missing (the page had not loaded its data yet); loading it again" >&2
done

failures=()
rows=$(section_rows overview-projections || true)
[ -n "$rows" ] || failures+=('the overview has no <section id="overview-projections">')
for name in "${projections[@]}"; do
  row=$(grep -F "<tr data-projection=\"$name\"" <<<"$rows" || true)
  if [ -z "$row" ]; then
    failures+=("projection $name: no <tr data-projection=\"$name\"> row in #overview-projections")
    continue
  fi
  cell=$(cells "$row" | grep '^<td class="position"' || true)
  if [ -z "$cell" ]; then
    failures+=("projection $name: its row has no <td class=\"position\"> cell")
    continue
  fi
  position=$(sed -n 's,^<td class="position">\([^<]*\)</td>.*,\1,p' <<<"$cell")
  expected=$(awk -v n="$name" '$1 == n { print $2 }' <<<"$api_positions")
  if ! [[ "$position" =~ ^[0-9]+$ ]]; then
    failures+=("projection $name: its position cell is not a number: $cell")
  elif [ "$position" -le 0 ]; then
    failures+=("projection $name: position $position, expected > 0 once the demo's story is told")
  elif [ -z "$expected" ]; then
    failures+=("projection $name: the page shows it but /api/projections does not list it")
  elif [ "$position" != "$expected" ]; then
    failures+=("projection $name: the page shows position $position, /api/projections says $expected")
  fi
done
while read -r name _; do
  [[ " ${projections[*]} " == *" $name "* ]] ||
    failures+=("/api/projections lists $name, which is not one of the demo's 6 projections (${projections[*]})")
done <<<"$api_positions"

rows=$(section_rows overview-dead-letters || true)
[ -n "$rows" ] || failures+=('the overview has no <section id="overview-dead-letters">')
count=$(grep -c '^<tr data-dead-letter=' <<<"$rows" || true)
[ "$count" = 1 ] || failures+=("#overview-dead-letters shows $count dead letter rows, expected exactly 1 ($dead_letter)")
row=$(grep -F "<tr data-dead-letter=\"$dead_letter\"" <<<"$rows" || true)
if [ -z "$row" ]; then
  failures+=("no <tr data-dead-letter=\"$dead_letter\"> row in #overview-dead-letters")
else
  status=$(cells "$row" | sed -n 's,^<td class="status">\([^<]*\)</td>.*,\1,p')
  [ "$status" = parked ] || failures+=("dead letter $dead_letter: <td class=\"status\"> is '$status', expected 'parked'")
  error=$(cells "$row" | grep '^<td class="error"' || true)
  [ -n "$error" ] || failures+=("dead letter $dead_letter: its row has no <td class=\"error\"> cell")
  [ -z "$error" ] || grep -qF "$dead_letter_error" <<<"$error" ||
    failures+=("dead letter $dead_letter: its error cell lacks '$dead_letter_error': $error")
fi
grep -q "^$dead_letter parked .*$dead_letter_error" <<<"$api_dead_letters" ||
  failures+=("/api/dead-letters has no parked $dead_letter with '$dead_letter_error'; it lists: ${api_dead_letters:-nothing}")
if grep -q '<div id="error-banner" role="alert">' "$dom"; then
  failures+=("the page shows its error banner: $(grep -o '<div id="error-banner" role="alert">.*' "$dom" | sed 's/<[^>]*>/ /g' | head -c 300)")
fi

# ---- 4. screenshots: the overview on a laptop and a phone, and the other pages
shots=("1280x800 1280,800 $url" "390x844 390,844 $url" "projections 1280,800 ${base}#/projections"
       "dead-letters 1280,800 ${base}#/dead-letters" "streams 1280,800 ${base}#/streams"
       "correlation 1280,800 ${base}#/correlation/p-1")
for shot in "${shots[@]}"; do
  read -r name size page <<<"$shot"
  png=$out/dashboard-$name.png
  browser 4000 "$out/chromium-$name.err" --window-size="$size" --screenshot="$png" "$page" >/dev/null ||
    failures+=("chromium could not take the screenshot $png of $page")
  if ! [ -f "$png" ]; then
    failures+=("no screenshot $png of $page")
  elif [ "$(stat -c %s "$png")" -le 10240 ]; then
    failures+=("the screenshot $png of $page has only $(stat -c %s "$png") bytes: a blank page?")
  fi
done

# The page's scripts must not throw, nor any of its requests fail.
if grep -qE 'Uncaught|Failed to load resource' "$console"; then
  failures+=("the page logged JavaScript errors or failed requests: $(grep -E 'Uncaught|Failed to load resource' "$console" | sort -u | head -n 5)")
fi

if ((${#failures[@]})); then
  echo "FAIL: the dashboard in chromium ($url):" >&2
  printf '  - %s\n' "${failures[@]}" >&2
  diagnostics
  exit 1
fi

# ---- 5. Ctrl-C: the demo stops and reports success
kill -INT "$demo_pid"
deadline=$(($(date +%s) + 30 * scale))
while demo_running; do
  [ "$(date +%s)" -lt "$deadline" ] || die "the demo did not stop within $((30 * scale)) s of SIGINT"
  sleep 0.1
done
status=0
wait "$demo_pid" || status=$?
demo_pid=
[ "$status" -eq 0 ] || die "the demo exited with status $status after SIGINT, expected 0 (one of its checks failed?)"

if [ -s "$console" ]; then
  echo "chromium's console messages (none is an error):"
  sed 's/^\[[^]]*\] /  /' "$console" | sort -u
fi
echo "PASS: ${#projections[@]} projections at their API positions, dead letter $dead_letter parked, screenshots in $out ($(($(date +%s) - started)) s)"
