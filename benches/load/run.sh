#!/usr/bin/env bash
# Runs the load harness: calls per second against Kamailio and SIPp alone, transfer setup
# latency, anchored media against rtpengine, and memory per call. Writes
# benches/results/<date>-<host>.md, .json and .png.
#
#   benches/load/run.sh            the full run: about 30 minutes, wants a quiet machine
#   benches/load/run.sh --smoke    a few calls per part, about two minutes
#   benches/load/run.sh --only cps,memory
#
# Installs SIPp (sip-tester), Kamailio, rtpengine and dumpcap (tshark) with apt-get when
# they are missing.
set -euo pipefail

cd "$(dirname "$0")/../.."

missing=()
command -v sipp >/dev/null 2>&1 || missing+=(sip-tester)
command -v kamailio >/dev/null 2>&1 || missing+=(kamailio)
command -v rtpengine >/dev/null 2>&1 || missing+=(rtpengine-daemon)
command -v dumpcap >/dev/null 2>&1 || missing+=(tshark)
if ((${#missing[@]} > 0)); then
    sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        sudo=(sudo)
    fi
    echo "installing ${missing[*]}" >&2
    "${sudo[@]}" apt-get update
    # Without a noninteractive frontend, tshark's installer prompts about capture rights.
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
fi
python3 -c 'import matplotlib' 2>/dev/null || pip install -q matplotlib || echo "no matplotlib: no plot" >&2

cargo build --release --bin hotline-b2bua
rtpgen=$(cargo bench --bench rtpgen --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json, sys
for line in sys.stdin:
    message = json.loads(line)
    if message.get("target", {}).get("name") == "rtpgen" and message.get("executable"):
        print(message["executable"])')

exec python3 -B benches/load/harness.py --engine target/release/hotline-b2bua --rtpgen "$rtpgen" "$@"
