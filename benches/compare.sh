#!/usr/bin/env bash
# Side-by-side comparison of FerrumQ, Mosquitto and rumqttd with the `loadgen` load generator
# (issue #4). Runs every scenario against every broker, REPS times each, with a fresh broker
# process per run (VmHWM is a lifetime peak), and appends a dated section with the medians,
# the ratios and the targets to benches/RESULTS.md.
#
# Usage: benches/compare.sh            (env: REPS=3 DURATION=10 STORM_TIMEOUT=60 NO_APPEND=1)
#
# Nothing is pinned: brokers and the load generator share all cores of the machine.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
REPS=${REPS:-3}
DURATION=${DURATION:-10}
STORM_TIMEOUT=${STORM_TIMEOUT:-60}
RESULTS=$ROOT/benches/RESULTS.md
WORK=$(mktemp -d /tmp/ferrumq-compare.XXXXXX)
RAW=$WORK/runs.jsonl
: >"$RAW"

FQ_PORT=21883
FQ_ADMIN=29464
MOSQ_PORT=21884
RUMQTT_PORT=21885

log() { echo "[compare $(date -u +%H:%M:%S)] $*" >&2; }

# --- file descriptors: 10,000 connections need ~10k fds on each side -----------------------
HARD=$(ulimit -Hn)
if [[ $HARD == unlimited ]]; then HARD=1048576; fi
WANT=30000
if ((HARD < WANT)); then WANT=$HARD; fi
ulimit -n "$WANT"
log "fd limit (soft=hard cap) for brokers and loadgen: $(ulimit -n)"

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
DATE=$(date -u)
COMMIT=$(git rev-parse --short HEAD)
DIRTY=$(git status --porcelain --untracked-files=no | wc -l)
NPROC=$(nproc)
MODEL=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)

# --- binaries -----------------------------------------------------------------------------------
log "building"
cargo build --release -p ferrumq-broker -p ferrumq-benches
FERRUMQ=$ROOT/target/release/ferrumq-broker
LOADGEN=$ROOT/target/release/loadgen

if ! command -v rumqttd >/dev/null && [[ ! -x $HOME/.cargo/bin/rumqttd ]]; then
    log "installing rumqttd (cargo install rumqttd; --locked fails on this toolchain)"
    cargo install rumqttd
fi
RUMQTTD=$(command -v rumqttd || echo "$HOME/.cargo/bin/rumqttd")
if ! command -v mosquitto >/dev/null && [[ ! -x /usr/sbin/mosquitto ]]; then
    log "installing mosquitto (Debian package)"
    apt-get install -y mosquitto
fi
MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)
MOSQ_VERSION=$("$MOSQUITTO" -h 2>/dev/null | head -1 || true)
RUMQTT_VERSION=$("$RUMQTTD" --version 2>/dev/null || echo rumqttd)
FQ_VERSION=$("$FERRUMQ" --version 2>/dev/null || echo ferrumq-broker)

# --- configurations -----------------------------------------------------------------------------
cat >"$WORK/ferrumq.yaml" <<EOF
listeners:
  - name: mqtt
    bind: 127.0.0.1:$FQ_PORT
    protocol: mqtt
admin:
  bind: 127.0.0.1:$FQ_ADMIN
settings:
  limits:
    maxConnections: 100000
    maxQueuedMessages: 1000
  shutdown:
    gracePeriodSecs: 1
log:
  level: warn
EOF

cat >"$WORK/mosquitto.conf" <<EOF
listener $MOSQ_PORT 127.0.0.1
allow_anonymous true
max_queued_messages 1000
max_inflight_messages 100
max_connections -1
persistence false
log_dest stderr
log_type error
log_type warning
EOF

# rumqttd: its demo rumqttd.toml with one v4 server, no v5/ws/console/prometheus, the
# connection limit raised above the storm's 10,000 and no accept throttling
# (next_connection_delay_ms = 0; the demo's 1 ms would cap the storm at 1000 connections/s).
cat >"$WORK/rumqttd.toml" <<EOF
id = 0

[router]
id = 0
max_connections = 20010
max_outgoing_packet_count = 1000
max_segment_size = 104857600
max_segment_count = 10

[v4.1]
name = "v4-1"
listen = "127.0.0.1:$RUMQTT_PORT"
next_connection_delay_ms = 0
    [v4.1.connections]
    connection_timeout_ms = 60000
    max_payload_size = 20480
    max_inflight_count = 100
    dynamic_filters = true
EOF

# --- broker lifecycle -----------------------------------------------------------------------------
BROKER_PID=
port_of() {
    case $1 in
    ferrumq) echo $FQ_PORT ;;
    mosquitto) echo $MOSQ_PORT ;;
    rumqttd) echo $RUMQTT_PORT ;;
    esac
}

start_broker() { # name logfile
    local name=$1 logf=$2 port
    port=$(port_of "$name")
    case $name in
    ferrumq) "$FERRUMQ" --config "$WORK/ferrumq.yaml" >"$logf" 2>&1 & ;;
    mosquitto) "$MOSQUITTO" -c "$WORK/mosquitto.conf" >"$logf" 2>&1 & ;;
    rumqttd) "$RUMQTTD" --config "$WORK/rumqttd.toml" >"$logf" 2>&1 & ;;
    esac
    BROKER_PID=$!
    local i
    for i in $(seq 1 100); do # at most 10 s
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            sleep 0.5 # let the broker settle (and the probe connection go away)
            return 0
        fi
        if ! kill -0 "$BROKER_PID" 2>/dev/null; then break; fi
        sleep 0.1
    done
    log "$name did not start listening on $port; log:"
    tail -5 "$logf" >&2 || true
    return 1
}

stop_broker() {
    [[ -n $BROKER_PID ]] || return 0
    kill -TERM "$BROKER_PID" 2>/dev/null || true
    local i
    for i in $(seq 1 30); do
        kill -0 "$BROKER_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$BROKER_PID" 2>/dev/null || true
    wait "$BROKER_PID" 2>/dev/null || true
    BROKER_PID=
}
trap stop_broker EXIT

# --- runs ---------------------------------------------------------------------------------------
# scenario key | loadgen arguments
SCENARIOS=(
    "fanout|--scenario fanout --duration-secs $DURATION"
    "fanin|--scenario fanin --duration-secs $DURATION"
    "p2p|--scenario p2p --duration-secs $DURATION"
    "p2p-10k|--scenario p2p --duration-secs $DURATION --rate 10000"
    "qos1|--scenario qos1 --duration-secs $DURATION --window 16"
    "storm|--scenario storm --duration-secs $STORM_TIMEOUT"
)
BROKERS=(ferrumq mosquitto rumqttd)

T0=$(date +%s)
for rep in $(seq 1 "$REPS"); do
    for entry in "${SCENARIOS[@]}"; do
        key=${entry%%|*}
        args=${entry#*|}
        for broker in "${BROKERS[@]}"; do
            logf=$WORK/$broker-$key-$rep.log
            out=$WORK/$broker-$key-$rep.json
            if ! start_broker "$broker" "$logf"; then
                echo "{\"key\":\"$key\",\"broker\":\"$broker\",\"rep\":$rep,\"error\":\"broker did not start\"}" >>"$RAW"
                stop_broker
                continue
            fi
            # shellcheck disable=SC2086
            timeout 150 "$LOADGEN" --host 127.0.0.1 --port "$(port_of "$broker")" \
                --payload 64 --broker-pid "$BROKER_PID" --json $args >"$out" 2>"$out.err" || true
            alive=true
            kill -0 "$BROKER_PID" 2>/dev/null || alive=false
            line=$(tail -1 "$out")
            [[ -n $line ]] || line='{"error":"loadgen produced no output (timeout?)"}'
            python3 -c '
import json, sys
d = json.loads(sys.argv[1])
d.update(key=sys.argv[2], broker=sys.argv[3], rep=int(sys.argv[4]), broker_alive=sys.argv[5] == "true",
         load=open("/proc/loadavg").read().split()[0])
print(json.dumps(d))' "$line" "$key" "$broker" "$rep" "$alive" >>"$RAW"
            log "rep $rep $key $broker: $(tail -1 "$RAW" | cut -c1-220)"
            if ! $alive; then
                log "$broker EXITED during $key rep $rep; log tail:"
                tail -5 "$logf" >&2 || true
            fi
            stop_broker
        done
    done
done
T1=$(date +%s)
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
cp "$RAW" "$ROOT/benches/compare-last-runs.jsonl"

# --- report -------------------------------------------------------------------------------------
SECTION=$WORK/section.md
python3 - "$RAW" >"$SECTION" <<EOF
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
B = ["ferrumq", "mosquitto", "rumqttd"]

def med(key, broker, field):
    v = [r[field] for r in runs if r.get("key") == key and r.get("broker") == broker
         and r.get(field) is not None]
    return (statistics.median(v), len(v)) if v else (None, 0)

def fmt(v, unit):
    if v is None: return "n/a"
    if unit == "MiB": return f"{v / 1048576:.1f}"
    if unit == "us": return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"
    if unit == "s": return f"{v:.2f}"
    return f"{v:,.0f}"

def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b not in (None, 0) else "n/a"

print(f"""
## Broker comparison: FerrumQ vs Mosquitto vs rumqttd (\`benches/compare.sh\`)

- **Command:** \`benches/compare.sh\` (REPS=$REPS, DURATION=$DURATION s per run, storm bounded by $STORM_TIMEOUT s); each run:
  \`target/release/loadgen --host 127.0.0.1 --port PORT --scenario S --duration-secs $DURATION [--rate 10000] --payload 64 --broker-pid PID --json\`
- **Machine:** \`nproc\` = $NPROC; \`lscpu\` model name: $MODEL; loopback only; fd limit $(ulimit -n)
- **Load average:** before the run $LOAD_BEFORE; after $LOAD_AFTER (1-, 5- and 15-minute averages: they include whatever ran just before)
- **Date:** $DATE; wall time $((T1 - T0)) s for $((REPS * ${#SCENARIOS[@]} * ${#BROKERS[@]})) runs
- **Commit:** $COMMIT (uncommitted tracked changes in the tree: $DIRTY files)
- **Brokers:** $FQ_VERSION (release, thin LTO); $MOSQ_VERSION (Debian package); $RUMQTT_VERSION (\`cargo install rumqttd\`)
- **Conditions:** a fresh broker process per run; nothing pinned: broker and load generator share
  the 2 cores, with each other and with whatever else runs there. Runs interleave brokers
  (rep → scenario → broker) so load drift hits all three alike. Every cell is the **median of
  {len(set(r.get('rep') for r in runs))} runs**; n = runs with a value. 64-byte payloads, MQTT 3.1.1, QoS 0 unless noted.
  Broker settings: FerrumQ defaults (maxQueuedMessages 1000); Mosquitto \`max_queued_messages 1000\`,
  \`max_inflight_messages 100\`; rumqttd demo config with \`max_connections 20010\`,
  \`max_outgoing_packet_count 1000\`, \`next_connection_delay_ms 0\`, \`max_inflight_count 100\`.
  Raw per-run JSON: \`benches/compare-last-runs.jsonl\`.
""")

SC = [
    ("fanout", "Fan-out: 1 publisher → 1000 subscribers (deliveries/s)", "msgs_per_sec"),
    ("fanin", "Fan-in: 100 publishers → 1 subscriber on \`bench/fanin/+\`", "msgs_per_sec"),
    ("p2p", "Point-to-point: 100 pairs, unthrottled", "msgs_per_sec"),
    ("p2p-10k", "Point-to-point: 100 pairs at a fixed 10,000 msg/s total", "msgs_per_sec"),
    ("qos1", "QoS 1: 10 pairs, window 16 per publisher (PUBACKs/s at the publishers)", "acks_per_sec"),
    ("storm", "Connection storm: 10,000 connections, 256 in flight (CONNACKs/s; latency = CONNECT→CONNACK)", "conn_rate"),
]
rows = [("msgs_per_sec", "delivered msg/s", "n"), ("acks_per_sec", "PUBACKs/s", "n"),
        ("conn_rate", "connections/s", "n"), ("conns_ok", "connections completed", "n"),
        ("p50_us", "latency p50 (µs)", "us"), ("p99_us", "latency p99 (µs)", "us"),
        ("p999_us", "latency p999 (µs)", "us"), ("broker_cpu_secs", "broker CPU (s)", "s"),
        ("broker_peak_rss_bytes", "broker peak RSS (MiB)", "MiB"),
        ("mem_per_idle_conn_bytes", "broker memory per idle connection (B)", "n"),
        ("errors", "client errors (median)", "n")]
M = {}
for key, title, main in SC:
    print(f"### {title}\n")
    print("| metric | FerrumQ | Mosquitto | rumqttd | FerrumQ/rumqttd | FerrumQ/Mosquitto |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for field, label, unit in rows:
        vals = [med(key, b, field) for b in B]
        if all(v is None for v, _ in vals): continue
        if field == "msgs_per_sec" and key in ("qos1", "storm") : label = "delivered msg/s (subscribers)" if key == "qos1" else label
        if key == "storm" and field == "msgs_per_sec": continue
        cells = [fmt(v, unit) + ("" if n == $REPS else f" (n={n})") for v, n in vals]
        f, m, r = (v for v, _ in vals)
        M[(key, field)] = (f, m, r)
        print(f"| {label} | {cells[0]} | {cells[1]} | {cells[2]} | {ratio(f, r)} | {ratio(f, m)} |")
    bad = [r for r in runs if r.get("key") == key and (r.get("error") or not r.get("broker_alive", True) or r.get("first_error"))]
    print()
    for r in bad:
        what = r.get("error") or r.get("first_error")
        alive = "" if r.get("broker_alive", True) else " **broker process exited**"
        print(f"- {r['broker']} rep {r['rep']}: {what}{alive}")
    if bad: print()

def tgt(name, ok, detail):
    status = "n/a (missing data)" if ok is None else ("**met**" if ok else "**not met**")
    print(f"- {name}: {status} — {detail}")

print("### Targets (same run)\n")
for key, field, what in [("fanout", "msgs_per_sec", "fan-out msg/s"), ("fanin", "msgs_per_sec", "fan-in msg/s"),
                         ("p2p", "msgs_per_sec", "point-to-point msg/s"), ("qos1", "acks_per_sec", "QoS 1 acks/s")]:
    f, m, r = M.get((key, field), (None, None, None))
    ok = None if f is None or r is None else f >= 1.5 * r
    tgt(f"{what} ≥ 1.5 × rumqttd", ok, f"FerrumQ {fmt(f,'n')} vs rumqttd {fmt(r,'n')} (ratio {ratio(f, r)})")
f, m, r = M.get(("p2p-10k", "p99_us"), (None, None, None))
tgt("p99 at 10,000 msg/s point-to-point < Mosquitto", None if f is None or m is None else f < m,
    f"FerrumQ {fmt(f,'us')} µs vs Mosquitto {fmt(m,'us')} µs")
f, m, r = M.get(("storm", "conn_rate"), (None, None, None))
tgt("connection rate ≥ Mosquitto", None if f is None or m is None else f >= m,
    f"FerrumQ {fmt(f,'n')}/s vs Mosquitto {fmt(m,'n')}/s")
f, m, r = M.get(("storm", "mem_per_idle_conn_bytes"), (None, None, None))
tgt("≤ 700 B broker memory per idle connection", None if f is None else f <= 700,
    f"FerrumQ {fmt(f,'n')} B (Mosquitto {fmt(m,'n')} B, rumqttd {fmt(r,'n')} B)")
f, m, r = M.get(("fanout", "broker_peak_rss_bytes"), (None, None, None))
tgt("peak RSS during fan-out < 64 MiB", None if f is None else f < 64 * 1048576,
    f"FerrumQ {fmt(f,'MiB')} MiB (Mosquitto {fmt(m,'MiB')}, rumqttd {fmt(r,'MiB')})")
print()
EOF

if [[ -n ${NO_APPEND:-} ]]; then
    cat "$SECTION"
else
    cat "$SECTION" >>"$RESULTS"
    log "appended to $RESULTS"
fi
log "work directory (broker logs, raw runs): $WORK"
