#!/usr/bin/env bash
# One-key transfer on loopback, end to end: the release engine with config/hotline.toml
# and the shipped dialplans, a SIPp caller (built-in uac_pcap), a SIPp agent that answers
# and presses *1 by replaying RFC 4733 captures, and a SIPp Beijing hotline on
# 127.0.0.1:5081 that answers, echoes RTP and answers OPTIONS probes (-aa). Waits for the
# call to end, prints the new transfer record and the latency the engine added, then
# stops everything it started by pid. Every SIPp run ends within 30 s (-timeout).
#
# Needs sipp (Debian package sip-tester) and the ports of the shipped configuration free:
# 5060 (engine), 5062 (caller), 5070 (agent), 5081 (Beijing) and 8345 (control API).
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
config="$root/config/hotline.toml"
records="$root/config/records/transfers.jsonl"
scenarios="$root/tests/scenarios"
engine_bin="$root/target/release/hotline-b2bua"

command -v sipp >/dev/null 2>&1 || {
    echo "sipp is missing: install the sip-tester package (scripts/test does)" >&2
    exit 1
}
for port in 5060 5062 5070 5081 8345; do
    if ss -Hlntu "sport = :$port" | grep -q .; then
        echo "port $port is in use; stop what listens there and run again" >&2
        exit 1
    fi
done
if [[ ! -x $engine_bin ]]; then
    cargo build --release --bin hotline-b2bua
fi

work=$(mktemp -d -t hotline-demo.XXXXXX)
ln -s /usr/share/sip-tester "$work/pcap"
pids=()
engine_pid=

stop_all() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    if [[ -n $engine_pid ]] && kill -0 "$engine_pid" 2>/dev/null; then
        kill -TERM "$engine_pid"
        # The engine ends active calls after its grace period; none remain here.
        for _ in $(seq 50); do
            kill -0 "$engine_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$engine_pid" 2>/dev/null || true
    fi
}
trap stop_all EXIT

records_before=0
if [[ -f $records ]]; then
    records_before=$(wc -l <"$records")
fi

export HOTLINE_CONTROL_TOKEN=${HOTLINE_CONTROL_TOKEN:-$(head -c 24 /dev/urandom | base64)}
"$engine_bin" run --config "$config" 2>"$work/engine.log" &
engine_pid=$!
for _ in $(seq 100); do
    grep -q "engine started" "$work/engine.log" && break
    kill -0 "$engine_pid" 2>/dev/null || {
        cat "$work/engine.log" >&2
        exit 1
    }
    sleep 0.1
done
echo "engine running (pid $engine_pid), logs and SIPp traces in $work"

# Runs SIPp in the work directory, bounded to `calls` calls and 30 s.
sipp_run() {
    local name=$1 calls=$2
    shift 2
    (cd "$work" && exec sipp "$@" -i 127.0.0.1 -m "$calls" -nostdin -timeout 30 \
        -timeout_error -trace_msg -message_file "${name}_messages.log" \
        >"$work/$name.out" 2>&1) &
    pids+=($!)
}

# SIPp counts each OPTIONS probe answered by -aa as a call of its own, so Beijing's SIPp
# is not limited to one call; it is stopped by pid once the caller is done.
sipp_run beijing 10 -sf "$scenarios/xfer_remote_answer.xml" -p 5081 -mp 6200 -rtp_echo -aa
beijing_pid=${pids[-1]}
sipp_run agent 1 -sf "$scenarios/xfer_agent_dtmf.xml" -p 5070 -mp 6000
agent_pid=${pids[-1]}
sleep 0.5
sipp_run caller 1 -sn uac_pcap 127.0.0.1:5060 -s 12345 -p 5062 -mp 6100
caller_pid=${pids[-1]}

status=0
for party in caller:$caller_pid agent:$agent_pid; do
    if wait "${party#*:}"; then
        echo "${party%%:*}: call completed"
    else
        echo "${party%%:*}: SIPp failed, see $work/${party%%:*}.out" >&2
        status=1
    fi
done
# The caller's BYE reaches Beijing through the engine; give it a moment, then stop it.
for _ in $(seq 20); do
    grep -q "^BYE " "$work/beijing_messages.log" 2>/dev/null && break
    sleep 0.1
done
kill "$beijing_pid" 2>/dev/null || true
if grep -q "^BYE " "$work/beijing_messages.log" 2>/dev/null; then
    echo "beijing: call completed"
else
    echo "beijing: no BYE from the caller, see $work/beijing_messages.log" >&2
    status=1
fi

record=
for _ in $(seq 50); do
    if [[ -f $records ]] && (($(wc -l <"$records") > records_before)); then
        record=$(tail -n 1 "$records")
        break
    fi
    sleep 0.1
done
if [[ -z $record ]]; then
    echo "no transfer record was written to $records" >&2
    exit 1
fi
echo "transfer record ($records):"
echo "$record"
python3 - "$record" <<'EOF'
import json
import sys

record = json.loads(sys.argv[1])
latency = record["latency_us"]
print(
    f"result {record['result']} to {record['destination']}: "
    f"trigger to INVITE {latency['invite_us']} us, answer to bridge {latency['bridge_us']} us"
)
EOF
exit "$status"
