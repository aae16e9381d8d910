#!/usr/bin/env bash
# The agent gateway under load (bench/README.md, "Agents: connections, latency, reconnection"),
# from a clean state: a new server directory (`shepherd server init`), `shepherd server --dir` on
# it, N nodes enrolled, then build/bench/shepherd_agent_load in four runs:
#   1. connect 1,000 agents: the server's RSS and CPU over a window while they heartbeat
#   2. latency, 1,000 agents: exit code 1 reported -> run_diagnostic received, p50/p90/p99/max
#   3. connect 10,000 agents: RSS and CPU as in 1
#   4. reconnect 10,000: kill -9 the server once all are connected, start it again on the same
#      directory, time until every agent is welcomed again
# Everything (server, generator, directory) is removed on exit, also on failure (KEEP=1 keeps
# the directory).
#
# Environment: BUILD_DIR (build), PORT (a free port from 20000), SMALL / LARGE (1000 / 10000
# agents), WINDOW (30 s of CPU sampling), SETTLE (5 s after the last welcome before sampling),
# EXIT_INTERVAL_MS (10), THREADS (generator io threads, 1), KEEP.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$root/build}
SHEPHERD=$BUILD_DIR/shepherd
LOAD=$BUILD_DIR/bench/shepherd_agent_load
SMALL=${SMALL:-1000}
LARGE=${LARGE:-10000}
WINDOW=${WINDOW:-30}
SETTLE=${SETTLE:-5}
EXIT_INTERVAL_MS=${EXIT_INTERVAL_MS:-10}
THREADS=${THREADS:-1}
for program in "$SHEPHERD" "$LOAD"; do
  [[ -x $program ]] || { echo "agent_load.sh: $program is not built (cmake --build $BUILD_DIR --target shepherd shepherd_agent_load)" >&2; exit 2; }
done

# Both processes hold one descriptor per connection.
ulimit -n "$(ulimit -Hn)"
if (( $(ulimit -n) <= LARGE + 100 )); then
  echo "agent_load.sh: ulimit -n is $(ulimit -n) (hard limit), too few for $LARGE agents" >&2
  exit 2
fi

if [[ -z ${PORT:-} ]]; then
  PORT=20000
  while (echo > "/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do PORT=$((PORT + 1)); done
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/shepherd-agent-load.XXXXXX")
dir=$work/server
server_pid=
load_pid=
cleanup() {
  local code=$?
  [[ -n $load_pid ]] && kill -9 "$load_pid" 2>/dev/null || true
  [[ -n $server_pid ]] && kill -9 "$server_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  if [[ ${KEEP:-0} == 1 ]]; then echo "kept $work"; else rm -rf "$work"; fi
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }

# Starts the server on $dir and waits until it answers; sets server_pid and server_start_s.
start_server() {
  local t0 t1
  t0=$(date +%s.%N)
  "$SHEPHERD" server --dir "$dir" >> "$work/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 600); do
    if curl -sf --cacert "$dir/tls/ca.crt" "https://127.0.0.1:$PORT/healthz" > /dev/null 2>&1; then
      t1=$(date +%s.%N)
      server_start_s=$(printf '%.2f' "$(echo "$t1 - $t0" | bc -l)")
      return 0
    fi
    kill -0 "$server_pid" 2>/dev/null || { tail -20 "$work/server.log" >&2; return 1; }
    sleep 0.05
  done
  echo "agent_load.sh: the server did not come up" >&2
  return 1
}

# utime + stime of a process, in clock ticks.
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
rss_mib() { awk '/^VmRSS:/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }
hwm_mib() { awk '/^VmHWM:/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }
threads_of() { awk '/^Threads:/ { print $2 }' "/proc/$1/status"; }
tick=$(getconf CLK_TCK)

# Waits until the generator wrote its ready file (all agents welcomed).
wait_ready() {
  local ready=$1
  while [[ ! -e $ready ]]; do
    kill -0 "$load_pid" 2>/dev/null || { echo "agent_load.sh: the load generator ended early" >&2; return 1; }
    sleep 0.2
  done
}

# result FILE NAME: a RESULT line's value from the generator's output.
result() { awk -v n="$2" '$1 == "RESULT" && $2 == n { print $3 }' "$1" | tail -1; }

# connect N: holds N agents, samples the server over WINDOW seconds; sets rss/cpu figures.
measure_connect() {
  local n=$1 out=$work/connect-$1.out ready=$work/ready-connect-$1
  log "connect $n agents"
  "$LOAD" connect --server "https://127.0.0.1:$PORT" --ca "$dir/tls/ca.crt" \
    --credentials "$work/credentials" --agents "$n" --threads "$THREADS" \
    --duration $((SETTLE + WINDOW + 3)) --ready-file "$ready" > "$out" 2> "$work/connect-$n.err" &
  load_pid=$!
  wait_ready "$ready"
  sleep "$SETTLE"
  local s0 g0 s1 g1
  s0=$(cpu_ticks "$server_pid"); g0=$(cpu_ticks "$load_pid")
  local rss_before; rss_before=$(rss_mib "$server_pid")
  sleep "$WINDOW"
  s1=$(cpu_ticks "$server_pid"); g1=$(cpu_ticks "$load_pid")
  eval "rss_$n=$(rss_mib "$server_pid") rss_start_$n=$rss_before hwm_$n=$(hwm_mib "$server_pid")"
  eval "threads_$n=$(threads_of "$server_pid")"
  eval "cpu_$n=$(printf '%.1f' "$(echo "100 * ($s1 - $s0) / $tick / $WINDOW" | bc -l)")"
  eval "gcpu_$n=$(printf '%.1f' "$(echo "100 * ($g1 - $g0) / $tick / $WINDOW" | bc -l)")"
  local code=0
  wait "$load_pid" || code=$?
  load_pid=
  cat "$out" >&2
  eval "welcome_$n=$(result "$out" all_welcomed_s) refused_$n=$(result "$out" refused)"
  eval "drops_$n=$(result "$out" drops)"
  [[ $code == 0 ]] || log "the connect run of $n agents ended with $code (see above)"
}

log "work directory $work, port $PORT, open files $(ulimit -n)"
"$SHEPHERD" server init "$dir" --listen "127.0.0.1:$PORT" > "$work/init.log"
start_server
log "server pid $server_pid up in ${server_start_s}s; enrolling $LARGE nodes"
"$LOAD" enrol --server "https://127.0.0.1:$PORT" --ca "$dir/tls/ca.crt" --enrol "$LARGE" \
  --bootstrap-token-file "$dir/secrets/bootstrap.token" --credentials-out "$work/credentials" \
  --http-connections 8 > "$work/enrol.out"
cat "$work/enrol.out" >&2
enrol_s=$(printf '%.1f' "$(result "$work/enrol.out" enrol_s)")
rss_idle=$(rss_mib "$server_pid")

measure_connect "$SMALL"

log "latency with $SMALL agents"
"$LOAD" latency --server "https://127.0.0.1:$PORT" --ca "$dir/tls/ca.crt" \
  --credentials "$work/credentials" --agents "$SMALL" --threads "$THREADS" \
  --admin-token-file "$dir/secrets/admin.token" --exit-interval-ms "$EXIT_INTERVAL_MS" \
  > "$work/latency.out" 2> "$work/latency.err" &
load_pid=$!
code=0; wait "$load_pid" || code=$?; load_pid=
cat "$work/latency.out" >&2
[[ $code == 0 ]] || log "the latency run ended with $code"
lat_n=$(result "$work/latency.out" latency_samples)
lat_p50=$(printf '%.2f' "$(result "$work/latency.out" latency_p50_ms)")
lat_p90=$(printf '%.2f' "$(result "$work/latency.out" latency_p90_ms)")
lat_p99=$(printf '%.2f' "$(result "$work/latency.out" latency_p99_ms)")
lat_max=$(printf '%.2f' "$(result "$work/latency.out" latency_max_ms)")

measure_connect "$LARGE"

log "reconnect $LARGE agents after kill -9 of the server"
ready=$work/ready-reconnect
"$LOAD" reconnect --server "https://127.0.0.1:$PORT" --ca "$dir/tls/ca.crt" \
  --credentials "$work/credentials" --agents "$LARGE" --threads "$THREADS" --duration 300 --hold $((SETTLE + 2)) \
  --ready-file "$ready" > "$work/reconnect.out" 2> "$work/reconnect.err" &
load_pid=$!
wait_ready "$ready"
sleep "$SETTLE"
rss_before_kill=$(rss_mib "$server_pid")
kill -9 "$server_pid"
wait "$server_pid" 2>/dev/null || true
start_server
restart_s=$server_start_s
log "server restarted (pid $server_pid) in ${restart_s}s"
rss_after_reconnect="(not all reconnected)"
while [[ ! -e $ready.again ]] && kill -0 "$load_pid" 2>/dev/null; do sleep 0.2; done
if [[ -e $ready.again ]]; then
  sleep "$SETTLE"
  rss_after_reconnect="$(rss_mib "$server_pid") MiB"
fi
code=0; wait "$load_pid" || code=$?; load_pid=
cat "$work/reconnect.out" >&2
[[ $code == 0 ]] || log "the reconnect run ended with $code"
reconnect_s=$(printf '%.2f' "$(result "$work/reconnect.out" reconnect_s)")
reconnect_refused=$(result "$work/reconnect.out" reconnect_refused)
reconnect_attempts=$(result "$work/reconnect.out" reconnect_attempts)
reconnect_tcp=$(result "$work/reconnect.out" reconnect_tcp_failures)
reconnect_tls=$(result "$work/reconnect.out" reconnect_tls_failures)

verdict() { if (( $(echo "$1" | bc -l) )); then echo "met"; else echo "NOT met"; fi; }
small=$SMALL large=$LARGE
eval "r1=\$rss_$small c1=\$cpu_$small g1=\$gcpu_$small w1=\$welcome_$small f1=\$refused_$small d1=\$drops_$small t1=\$threads_$small"
eval "r2=\$rss_$large c2=\$cpu_$large g2=\$gcpu_$large w2=\$welcome_$large f2=\$refused_$large d2=\$drops_$large h2=\$hwm_$large t2=\$threads_$large"
cat <<EOF

==== Shepherd agent gateway under load ($(date -u +%F), $(nproc) cores, $(uname -r)) ====
server: $SHEPHERD (threads: $t2), generator: $LOAD ($THREADS io thread(s)), 127.0.0.1:$PORT
heartbeats every 10 s (policy.heartbeat_timeout 60 / 6); CPU over ${WINDOW} s, ${SETTLE} s after the last welcome
enrolment of $LARGE nodes: ${enrol_s} s; server RSS before any agent: ${rss_idle} MiB

agents  | all welcomed | refused | drops | server RSS | server CPU (% of one core) | generator CPU (%)
$(printf '%7s | %10.2f s | %7s | %5s | %6s MiB | %26s | %12s' "$small" "$w1" "$f1" "$d1" "$r1" "$c1" "$g1")
$(printf '%7s | %10.2f s | %7s | %5s | %6s MiB | %26s | %12s' "$large" "$w2" "$f2" "$d2" "$r2" "$c2" "$g2")
  peak RSS (VmHWM) so far with $large: ${h2} MiB
  target, $large agents: RSS < 1024 MiB: $(verdict "$r2 < 1024"); CPU < 100 %: $(verdict "$c2 < 100")

exit code 1 -> run_diagnostic at the agent, $small agents connected, $lat_n samples (one every ${EXIT_INTERVAL_MS} ms):
  p50 ${lat_p50} ms, p90 ${lat_p90} ms, p99 ${lat_p99} ms, max ${lat_max} ms
  target p99 < 50 ms: $(verdict "$lat_p99 < 50")

reconnection of $large agents after kill -9 + restart (server back in ${restart_s} s):
  ${reconnect_s} s from the first drop until all were welcomed again
  ${reconnect_attempts} attempts, ${reconnect_refused} refused (HTTP), ${reconnect_tcp} TCP failures (server down), ${reconnect_tls} TLS failures
  server RSS before the kill ${rss_before_kill} MiB, ${SETTLE} s after all reconnected ${rss_after_reconnect}
  target < 60 s without a refused agent: $(verdict "$reconnect_s >= 0 && $reconnect_s < 60 && $reconnect_refused == 0")
EOF
