#!/usr/bin/env python3
"""Load harness for hotline-b2bua: calls per second, transfer setup latency, anchored
media and memory per call, each against a reference measured in the same run.

Started by benches/load/run.sh, which installs the peers and builds the binaries. Every
process it starts listens on 127.0.0.1 only, every run is bounded in calls and seconds,
and every process is stopped by its pid. Writes benches/results/<date>-<host>.md, .json
and .png.
"""

import argparse
import datetime
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOAD = ROOT / "benches" / "load"
SCENARIOS = LOAD / "scenarios"
LOCALHOST = "127.0.0.1"

# Ports, away from the engine's defaults and the test suite's 20000-32767 blocks.
ENGINE_SIP = 7060
ENGINE_CONTROL = 7345
AGENT = 7070
CALLER = 7062
CALLER_2 = 7064
AGENT_MEDIA = 17100  # the transfer runs' agent SIPp sends RTP from here
HOTLINE_PORT_SHIFT = 2000  # the dialplans' 127.0.0.1:5081 becomes 127.0.0.1:7081
KAMAILIO = 7160
KAMAILIO_UAS = 7170
DIRECT_UAS = 7270
UAC = 7280
GEN_CALLER = 7400
GEN_AGENT = 7402
RTPENGINE_NG = 7223
ENGINE_MEDIA = (34000, 53999)  # 10,000 port pairs: 5,000 calls with both legs
RTPENGINE_MEDIA = (54000, 59999)
# SIPp at high rates: the same 4 MiB receive buffer as the engine and Kamailio (SIPp's
# default is 64 KiB), and more messages handled per turn of its loop.
SIPP_THROUGHPUT = ["-buff_size", str(4 * 1024 * 1024),
                   "-max_recv_loops", "10000", "-max_sched_loops", "10000"]
# Every calls-per-second subject first carries this many calls per second for this many
# seconds, not counted, so that start-up (Kamailio forking its workers, caches, the
# engine's first relay ports) does not fail the first step.
CPS_WARMUP = (200, 2)
KAMAILIO_MODULES = "/usr/lib/x86_64-linux-gnu/kamailio/modules"

FULL = {
    "cps_rates": [500, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10000, 12000, 14000, 16000],
    "cps_seconds": 10,
    "transfer_calls_up": [10, 100, 1000],
    "transfers": 200,
    "transfer_rate": 5,
    "media_calls": [250, 500, 1000, 1500],
    "media_seconds": 10,
    "memory_calls": [1000, 5000],
    # Longer than the setup transactions linger after the last call was answered.
    "settle_seconds": 35,
}
SMOKE = {
    "cps_rates": [50, 100],
    "cps_seconds": 2,
    "transfer_calls_up": [10],
    "transfers": 3,
    "transfer_rate": 2,
    "media_calls": [20],
    "media_seconds": 3,
    "memory_calls": [50, 100],
    "settle_seconds": 3,
}


class Processes:
    """Processes started by the harness, stopped by pid, and every command line run."""

    def __init__(self, work):
        self.work = work
        self.running = []
        self.commands = []

    def start(self, name, command, cwd=None, env=None, cpu=None):
        if cpu is not None and shutil.which("taskset"):
            command = ["taskset", "-c", str(cpu)] + command
        self.commands.append(" ".join(command))
        log = open(self.work / f"{name}.log", "ab")
        process = subprocess.Popen(
            command,
            cwd=cwd or self.work,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.running.append(process)
        return process

    def run(self, name, command, timeout, cwd=None, cpu=None):
        """Runs a command to its end (killed after `timeout` seconds); returns its exit code."""
        process = self.start(name, command, cwd=cwd, cpu=cpu)
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop(process)
            return None

    def stop(self, process, grace=5):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process in self.running:
            self.running.remove(process)

    def stop_all(self):
        for process in list(reversed(self.running)):
            self.stop(process)


def wait_for(check, timeout, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    return check()


def cpu_ticks(pid):
    """Returns utime + stime of a process and its threads, in clock ticks (proc(5))."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])


def rss_kib(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def percentiles(values):
    if not values:
        return {"count": 0, "p50": None, "p99": None, "max": None}
    ordered = sorted(values)

    def rank(fraction):
        index = max(0, min(len(ordered) - 1, int(round(fraction * len(ordered) + 0.5)) - 1))
        return ordered[index]

    return {"count": len(ordered), "p50": rank(0.50), "p99": rank(0.99), "max": ordered[-1]}


# --- SIPp -----------------------------------------------------------------------------


def sipp(scenario, port, media_port, extra, target=None):
    command = ["sipp"]
    command += ["-sn", scenario] if not scenario.endswith(".xml") else ["-sf", str(SCENARIOS / scenario)]
    command += ["-i", LOCALHOST, "-p", str(port), "-mp", str(media_port), "-nostdin"]
    command += extra
    if target:
        command.append(target)
    return command


def sipp_stats(path):
    """Returns the last line of a SIPp -trace_stat file as a dict of cumulative counters."""
    try:
        lines = [line for line in Path(path).read_text().splitlines() if line.strip()]
    except OSError:
        return {}
    if len(lines) < 2:
        return {}
    names = lines[0].rstrip(";").split(";")
    values = lines[-1].rstrip(";").split(";")
    return dict(zip(names, values))


def counter(stats, name):
    try:
        return int(stats.get(name, "0"))
    except ValueError:
        return 0


def logged_ports(path):
    try:
        text = Path(path).read_text()
    except OSError:
        return []
    return [int(line.split()[-1]) for line in text.splitlines() if line.startswith("relay ")]


# --- the engine -----------------------------------------------------------------------


def write_engine_config(work, agent_port=AGENT, inactivity=0):
    plans = work / "dialplans"
    plans.mkdir(exist_ok=True)
    for plan in (ROOT / "dialplans").glob("*.toml"):
        text = plan.read_text()
        for port in range(5081, 5095):
            text = text.replace(f"127.0.0.1:{port}", f"127.0.0.1:{port + HOTLINE_PORT_SHIFT}")
        # The shipped trunks allow 30 simultaneous calls each; the transfer runs hold more.
        text = re.sub(r"(?m)^channels = \d+$", "channels = 5000", text)
        (plans / plan.name).write_text(text)
    config = work / "hotline.toml"
    config.write_text(
        f"""[sip]
listen = "{LOCALHOST}:{ENGINE_SIP}"
trusted = ["127.0.0.0/8"]

[agent]
target = "sip:agent@{LOCALHOST}:{agent_port}"

[media]
address = "{LOCALHOST}"
port_min = {ENGINE_MEDIA[0]}
port_max = {ENGINE_MEDIA[1]}
inactivity_timeout_secs = {inactivity}

[shutdown]
grace_period_secs = 0

[log]
level = "warn"

[dialplan]
paths = ["dialplans"]

[control]
enabled = true
listen = "{LOCALHOST}:{ENGINE_CONTROL}"

[cdr]
enabled = true
path = "records/transfers.jsonl"
"""
    )
    return config


def start_engine(processes, engine, work, cpu=None):
    config = write_engine_config(work)
    records = work / "records" / "transfers.jsonl"
    if records.exists():
        records.unlink()
    env = dict(os.environ, HOTLINE_CONTROL_TOKEN="load-harness-token")
    process = processes.start("engine", [str(engine), "run", "--config", str(config)], env=env, cpu=cpu)

    def healthy():
        try:
            url = f"http://{LOCALHOST}:{ENGINE_CONTROL}/v1/health"
            with urllib.request.urlopen(url, timeout=1) as response:
                return response.status == 200
        except OSError:
            return process.poll() is not None

    if not wait_for(healthy, 20) or process.poll() is not None:
        raise RuntimeError(f"engine did not start; see {work / 'engine.log'}")
    return process


# --- a. calls per second --------------------------------------------------------------


def cps_step(processes, work, name, target, uas_port, rate, seconds):
    """Runs one bounded step: `rate` calls per second for `seconds` through `target`."""
    calls = rate * seconds
    tag = f"cps-{name}-{rate}"
    uas_stats = work / f"{tag}-uas.csv"
    uac_stats = work / f"{tag}-uac.csv"
    uas = None
    if uas_port is not None:
        uas = processes.start(
            f"{tag}-uas",
            sipp("uas_ringing.xml", uas_port, 16000, ["-trace_stat", "-stf", str(uas_stats), "-fd", "1"]
                 + SIPP_THROUGHPUT),
        )
        time.sleep(0.3)
    code = processes.run(
        f"{tag}-uac",
        sipp(
            "uac",
            UAC,
            16100,
            [
                "-r", str(rate), "-m", str(calls), "-d", "0",
                "-timeout", str(seconds + 20), "-timeout_error",
                "-trace_stat", "-stf", str(uac_stats), "-fd", "1",
            ] + SIPP_THROUGHPUT,
            target,
        ),
        timeout=seconds + 30,
    )
    if uas is not None:
        time.sleep(1.2)
        processes.stop(uas)
    uac = sipp_stats(uac_stats)
    uas_counters = sipp_stats(uas_stats)
    result = {
        "rate": rate,
        "calls": calls,
        "exit": code,
        "successful": counter(uac, "SuccessfulCall(C)"),
        "failed": counter(uac, "FailedCall(C)"),
        "retransmissions": counter(uac, "Retransmissions(C)")
        + counter(uas_counters, "Retransmissions(C)"),
    }
    result["passed"] = (
        code == 0
        and result["successful"] == calls
        and result["failed"] == 0
        and result["retransmissions"] == 0
    )
    return result


def cps_subject(processes, work, name, target, uas_port, rates, seconds):
    warmup = cps_step(processes, work, f"{name}-warmup", target, uas_port, *CPS_WARMUP)
    print(f"  cps {name} warm-up: {warmup}", flush=True)
    time.sleep(1)
    steps = []
    for rate in rates:
        step = cps_step(processes, work, name, target, uas_port, rate, seconds)
        steps.append(step)
        print(f"  cps {name} {rate}/s: {step}", flush=True)
        if not step["passed"]:
            break
        time.sleep(1)
    best = max((step["rate"] for step in steps if step["passed"]), default=0)
    return {"best": best, "steps": steps, "warmup": warmup}


def start_kamailio(processes, work):
    """Starts Kamailio as the stateful proxy of `kamailio.cfg` in front of a UAS on
    KAMAILIO_UAS. Returns the process, or a sentence saying why it is not running."""
    kamailio = shutil.which("kamailio")
    if not kamailio:
        return "kamailio not installed"
    command = [
        kamailio, "-f", str(LOAD / "kamailio.cfg"), "-L", KAMAILIO_MODULES,
        "-A", f'UAS_ADDR="sip:{LOCALHOST}:{KAMAILIO_UAS}"',
        "-l", f"udp:{LOCALHOST}:{KAMAILIO}", "-x", "tlsf", "-m", "2048", "-M", "16",
        "-n", "2", "-DD", "-E", "-Y", str(work / "kamailio-run"), "-w", str(work),
    ]
    (work / "kamailio-run").mkdir(exist_ok=True)
    proxy = processes.start("kamailio", command)
    time.sleep(1.5)
    if proxy.poll() is not None:
        processes.stop(proxy)
        return f"kamailio exited; see {work / 'kamailio.log'}"
    return proxy


def measure_cps(processes, work, engine, plan):
    results = {}
    # The floor: SIPp UAC straight to a SIPp UAS.
    results["sipp direct"] = cps_subject(
        processes, work, "direct", f"{LOCALHOST}:{DIRECT_UAS}", DIRECT_UAS,
        plan["cps_rates"], plan["cps_seconds"],
    )

    proxy = start_kamailio(processes, work)
    if isinstance(proxy, str):
        results["kamailio"] = {"error": proxy}
    else:
        results["kamailio"] = cps_subject(
            processes, work, "kamailio", f"{LOCALHOST}:{KAMAILIO}", KAMAILIO_UAS,
            plan["cps_rates"], plan["cps_seconds"],
        )
        processes.stop(proxy)

    engine_process = start_engine(processes, engine, work)
    results["hotline-b2bua"] = cps_subject(
        processes, work, "engine", f"{LOCALHOST}:{ENGINE_SIP}", AGENT,
        plan["cps_rates"], plan["cps_seconds"],
    )
    processes.stop(engine_process)
    kamailio_best = results.get("kamailio", {}).get("best")
    if kamailio_best:
        results["ratio_to_kamailio"] = results["hotline-b2bua"]["best"] / kamailio_best
    return results


# --- b. transfer setup latency --------------------------------------------------------


def start_capture(processes, work, tag, bpf=None):
    """Starts dumpcap on `lo`, by default for the engine's SIP port and the agent's RTP.
    Returns the process and the file, or None when dumpcap is missing or may not capture
    here."""
    if not shutil.which("dumpcap"):
        return None
    path = work / f"{tag}.pcap"
    bpf = bpf or f"udp and (port {ENGINE_SIP} or src portrange {AGENT_MEDIA}-{AGENT_MEDIA + 9})"
    command = [
        "dumpcap", "-q", "-P", "-i", "lo", "-s", "256",
        "-f", bpf, "-a", "duration:600", "-w", str(path),
    ]
    process = processes.start(f"{tag}-dumpcap", command)
    log = work / f"{tag}-dumpcap.log"

    def capturing():
        return process.poll() is not None or "Capturing on" in log.read_text(errors="replace")

    if not wait_for(capturing, 10) or process.poll() is not None:
        processes.stop(process)
        return None
    return process, path


def capture_packets(path):
    """Reads a classic pcap file of Ethernet or Linux cooked frames: (seconds, source
    port, destination port, UDP payload) for every IPv4 UDP packet."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return []
    if len(data) < 24:
        return []

    magic = struct.unpack("<I", data[:4])[0]
    order = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    scale = 1e-9 if magic in (0xA1B23C4D, 0x4D3CB2A1) else 1e-6
    link = struct.unpack(order + "I", data[20:24])[0]
    link_header = {1: 14, 113: 16}.get(link)
    if link_header is None:
        return []

    packets = []
    offset = 24
    while offset + 16 <= len(data):
        seconds, fraction, captured, _ = struct.unpack(order + "IIII", data[offset:offset + 16])
        frame = data[offset + 16:offset + 16 + captured]
        offset += 16 + captured
        ip = frame[link_header:]
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        udp = ip[(ip[0] & 15) * 4:]
        if len(udp) < 8:
            continue
        source, destination = struct.unpack(">HH", udp[:4])
        packets.append((seconds + fraction * scale, source, destination, udp[8:]))
    return packets


def capture_latencies(packets, trigger):
    """Returns the microseconds from each transfer's trigger packet reaching the engine to
    the INVITE leaving it for the remote hotline. The trigger is the last agent INFO, or
    the last telephone-event packet of the key `1`, before the INVITE. The engine acts on
    the first packet of a press, and the next one comes 20 ms later."""
    hotline = 5081 + HOTLINE_PORT_SHIFT
    latencies = []
    last_trigger = None
    for time_s, source, destination, payload in packets:
        if trigger == "info":
            is_trigger = destination == ENGINE_SIP and payload.startswith(b"INFO ")
        else:
            is_trigger = (
                AGENT_MEDIA <= source < AGENT_MEDIA + 10
                and len(payload) == 16
                and payload[0] >> 6 == 2
                and payload[1] & 0x7F == 101
                and payload[12] == 1
            )
        if is_trigger:
            last_trigger = time_s
        elif source == ENGINE_SIP and destination == hotline and payload.startswith(b"INVITE "):
            if last_trigger is not None:
                latencies.append((time_s - last_trigger) * 1e6)
                last_trigger = None
    return latencies


def run_paced_caller(processes, tag, scenario, target, calls, rate, seconds, extra=()):
    """Run the measured caller (user 13800000000, no RTP) at `rate` calls per second
    until `calls` have been placed; returns SIPp's exit code."""
    return processes.run(
        f"{tag}-caller",
        sipp(
            scenario, CALLER_2, 17300,
            [
                "-key", "rtp_port", "9", "-key", "caller_user", "13800000000",
                "-r", str(rate), "-m", str(calls), *extra,
                "-timeout", str(int(seconds) + 20), "-timeout_error",
            ],
            target,
        ),
        timeout=seconds + 30,
    )


def measure_transfer(processes, work, engine, plan, triggers):
    results = []
    pcap = work / "pcap"
    if not pcap.exists():
        pcap.symlink_to("/usr/share/sip-tester")
    for trigger, scenario in (("info", "agent_info.xml"), ("rfc4733", "agent_rfc4733.xml")):
        if trigger not in triggers:
            continue
        for calls_up in plan["transfer_calls_up"]:
            tag = f"transfer-{trigger}-{calls_up}"
            engine_process = start_engine(processes, engine, work)
            transfers = plan["transfers"]
            transfer_seconds = transfers / plan["transfer_rate"] + 10
            setup_seconds = calls_up / 200 + 5
            hold_ms = int((setup_seconds + transfer_seconds + 5) * 1000)
            hotline = processes.start(
                f"{tag}-hotline",
                sipp("hotline.xml", 5081 + HOTLINE_PORT_SHIFT, 17000, []),
            )
            agent = processes.start(
                f"{tag}-agent",
                sipp(scenario, AGENT, AGENT_MEDIA, ["-trace_err"]),
            )
            time.sleep(0.3)
            background = processes.start(
                f"{tag}-background",
                sipp(
                    "caller_hold.xml", CALLER, 17200,
                    [
                        "-key", "rtp_port", "9", "-key", "caller_user", "bg",
                        "-r", "200", "-m", str(calls_up), "-d", str(hold_ms),
                        "-timeout", str(int(hold_ms / 1000) + 30), "-timeout_error",
                        "-trace_logs", "-log_file", str(work / f"{tag}-background-relay.log"),
                    ],
                    f"{LOCALHOST}:{ENGINE_SIP}",
                ),
            )
            up = wait_for(
                lambda: len(logged_ports(work / f"{tag}-background-relay.log")) >= calls_up,
                setup_seconds + 20,
            )
            capture = start_capture(processes, work, tag)
            code = run_paced_caller(
                processes, tag, "caller_hold.xml", f"{LOCALHOST}:{ENGINE_SIP}",
                transfers, plan["transfer_rate"], transfer_seconds, ["-d", "3000"],
            )
            time.sleep(1)
            if capture:
                processes.stop(capture[0])
            for process in (background, agent, hotline, engine_process):
                processes.stop(process)
            wire = capture_latencies(capture_packets(capture[1]), trigger) if capture else []
            records = []
            path = work / "records" / "transfers.jsonl"
            if path.exists():
                records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            bridged = [record for record in records if record.get("result") == "bridged"]
            invite = [record["latency_us"]["invite_us"] for record in bridged
                      if record.get("latency_us", {}).get("invite_us") is not None]
            bridge = [record["latency_us"]["bridge_us"] for record in bridged
                      if record.get("latency_us", {}).get("bridge_us") is not None]
            result = {
                "trigger": trigger,
                "calls_up": calls_up,
                "background_up": bool(up),
                "transfers": transfers,
                "caller_exit": code,
                "records": len(records),
                "bridged": len(bridged),
                "causes": sorted({str(record.get("cause")) for record in records if record.get("result") != "bridged"}),
                "invite_us": percentiles(invite),
                "bridge_us": percentiles(bridge),
                "capture_invite_us": percentiles(wire),
            }
            print(f"  transfer {trigger} with {calls_up} up: {result}", flush=True)
            results.append(result)
    return results


def relay_latencies(packets, port):
    """Returns the microseconds from each INFO reaching `port` to the INFO leaving it. The
    reference calls send one INFO at a time, so each INFO out pairs with the INFO in
    before it."""
    latencies = []
    arrived = None
    for time_s, source, destination, payload in packets:
        if not payload.startswith(b"INFO "):
            continue
        if destination == port:
            arrived = time_s
        elif source == port and arrived is not None:
            latencies.append((time_s - arrived) * 1e6)
            arrived = None
    return latencies


def measure_relay_reference(processes, work, engine, plan):
    """Relays one in-dialog INFO per call through the engine and through Kamailio at the
    transfers' pace, and times each from the packets on `lo`. An idle process meets each
    request with cold caches, as the engine meets a transfer's trigger. These rows show
    what that costs a proxy on the same machine."""
    results = {}
    calls = plan["transfers"]
    seconds = calls / plan["transfer_rate"] + 10
    for name in ("hotline-b2bua", "kamailio"):
        if name == "kamailio":
            subject = start_kamailio(processes, work)
            if isinstance(subject, str):
                results[name] = {"error": subject}
                continue
            port, callee_port = KAMAILIO, KAMAILIO_UAS
        else:
            subject = start_engine(processes, engine, work)
            port, callee_port = ENGINE_SIP, AGENT
        tag = f"relay-{name}"
        callee = processes.start(f"{tag}-callee", sipp("callee_info.xml", callee_port, 17400, []))
        time.sleep(0.3)
        capture = start_capture(processes, work, tag, f"udp and port {port}")
        code = run_paced_caller(
            processes, tag, "caller_info.xml", f"{LOCALHOST}:{port}",
            calls, plan["transfer_rate"], seconds,
        )
        time.sleep(0.5)
        if capture:
            processes.stop(capture[0])
        for process in (callee, subject):
            processes.stop(process)
        wire = relay_latencies(capture_packets(capture[1]), port) if capture else []
        results[name] = {"calls": calls, "caller_exit": code, "relayed_us": percentiles(wire)}
        print(f"  in-dialog INFO relay through {name}: {results[name]}", flush=True)
    return results


# --- c. anchored media ----------------------------------------------------------------


def bencode(value):
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return b"%d:%s" % (len(value), value)
    if isinstance(value, list):
        return b"l" + b"".join(bencode(item) for item in value) + b"e"
    if isinstance(value, dict):
        return b"d" + b"".join(bencode(key) + bencode(value[key]) for key in sorted(value)) + b"e"
    raise TypeError(type(value))


def bdecode(data, index=0):
    kind = data[index:index + 1]
    if kind == b"i":
        end = data.index(b"e", index)
        return int(data[index + 1:end]), end + 1
    if kind in (b"l", b"d"):
        index += 1
        items = []
        while data[index:index + 1] != b"e":
            item, index = bdecode(data, index)
            items.append(item)
        if kind == b"l":
            return items, index + 1
        return {items[i].decode(): items[i + 1] for i in range(0, len(items), 2)}, index + 1
    colon = data.index(b":", index)
    length = int(data[index:colon])
    return data[colon + 1:colon + 1 + length], colon + 1 + length


def sdp(port, origin):
    return (
        f"v=0\r\no={origin} 1 1 IN IP4 {LOCALHOST}\r\ns=-\r\nc=IN IP4 {LOCALHOST}\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=ptime:20\r\na=sendrecv\r\n"
    )


def sdp_port(text):
    for line in text.splitlines():
        if line.startswith("m=audio "):
            return int(line.split()[1])
    return None


class NgClient:
    """rtpengine's ng control protocol: a cookie and a bencoded dictionary over UDP."""

    def __init__(self, port):
        self.address = (LOCALHOST, port)
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind((LOCALHOST, 0))
        self.socket.settimeout(2)
        self.sequence = 0

    def request(self, message):
        self.sequence += 1
        cookie = b"h%d" % self.sequence
        self.socket.sendto(cookie + b" " + bencode(message), self.address)
        while True:
            data = self.socket.recv(65535)
            answer_cookie, _, body = data.partition(b" ")
            if answer_cookie == cookie:
                return bdecode(body)[0]


def engine_media_calls(processes, work, tag, calls, hold_seconds):
    """Sets up `calls` calls through the engine whose SDP points at the generator's
    sockets; returns the relay ports the callers and the agents send to."""
    caller_log = work / f"{tag}-caller-relay.log"
    agent_log = work / f"{tag}-agent-relay.log"
    processes.start(
        f"{tag}-agent",
        sipp("agent_hold.xml", AGENT, 18000,
             ["-key", "rtp_port", str(GEN_AGENT), "-trace_logs", "-log_file", str(agent_log)]),
    )
    time.sleep(0.3)
    processes.start(
        f"{tag}-caller",
        sipp(
            "caller_hold.xml", CALLER, 18100,
            [
                "-key", "rtp_port", str(GEN_CALLER), "-key", "caller_user", "bg",
                "-r", "200", "-m", str(calls), "-d", str(int(hold_seconds * 1000)),
                "-timeout", str(int(hold_seconds) + 30), "-timeout_error",
                "-trace_logs", "-log_file", str(caller_log),
            ],
            f"{LOCALHOST}:{ENGINE_SIP}",
        ),
    )
    wait_for(
        lambda: len(logged_ports(caller_log)) >= calls and len(logged_ports(agent_log)) >= calls,
        calls / 200 + 20,
    )
    return logged_ports(caller_log), logged_ports(agent_log)


def rtpengine_calls(client, calls):
    a_ports, b_ports = [], []
    for call in range(calls):
        call_id = f"load-{call}"
        offer = client.request({
            "command": "offer", "call-id": call_id, "from-tag": f"caller-{call}",
            "sdp": sdp(GEN_CALLER, "caller"),
        })
        answer = client.request({
            "command": "answer", "call-id": call_id, "from-tag": f"caller-{call}",
            "to-tag": f"agent-{call}", "sdp": sdp(GEN_AGENT, "agent"),
        })
        b_port = sdp_port(offer.get("sdp", b"").decode())
        a_port = sdp_port(answer.get("sdp", b"").decode())
        if a_port and b_port:
            a_ports.append(a_port)
            b_ports.append(b_port)
    return a_ports, b_ports


def run_generator(processes, work, rtpgen, tag, a_ports, b_ports, seconds, relay_pid):
    (work / f"{tag}-a-ports").write_text("\n".join(map(str, a_ports)))
    (work / f"{tag}-b-ports").write_text("\n".join(map(str, b_ports)))
    output = work / f"{tag}-rtpgen.json"
    before = cpu_ticks(relay_pid) if relay_pid else None
    started = time.monotonic()
    command = [
        "taskset", "-c", "1", str(rtpgen),
        "--caller-port", str(GEN_CALLER), "--agent-port", str(GEN_AGENT),
        "--a-ports", str(work / f"{tag}-a-ports"), "--b-ports", str(work / f"{tag}-b-ports"),
        "--seconds", str(seconds),
    ]
    processes.commands.append(" ".join(command) + f" > {output.name}")
    with open(output, "wb") as out:
        subprocess.run(command, stdout=out, timeout=seconds + 30, check=False)
    elapsed = time.monotonic() - started
    after = cpu_ticks(relay_pid) if relay_pid else None
    report = json.loads(output.read_text() or "{}")
    ticks = os.sysconf("SC_CLK_TCK")
    if before is not None and after is not None and report.get("received"):
        cpu_seconds = (after - before) / ticks
        report["relay_cpu_seconds"] = cpu_seconds
        report["relay_cpu_ms_per_1000_packets"] = 1000 * cpu_seconds / (report["received"] / 1000)
        relayed_pps = report["received"] / elapsed
        report["relay_core_percent"] = 100 * cpu_seconds / elapsed
        report["relay_core_percent_per_1000_pps"] = report["relay_core_percent"] / (relayed_pps / 1000)
        report["packets_per_core_second"] = report["received"] / cpu_seconds if cpu_seconds else None
    return report


def measure_media(processes, work, engine, rtpgen, plan):
    results = []
    seconds = plan["media_seconds"]
    for calls in plan["media_calls"]:
        # The floor: the same generator with every stream sent straight from the caller
        # socket to the agent socket, no relay. Its delay is loopback and the generator.
        tag = f"media-direct-{calls}"
        report = {"relay": "none (loopback)", "calls": calls, "calls_set_up": calls}
        report.update(run_generator(processes, work, rtpgen, tag, [GEN_AGENT] * calls,
                                    [GEN_CALLER] * calls, seconds, None))
        print(f"  media direct {calls} calls: {report}", flush=True)
        results.append(report)

        tag = f"media-engine-{calls}"
        engine_process = start_engine(processes, engine, work, cpu=0)
        hold = calls / 200 + seconds + 15
        a_ports, b_ports = engine_media_calls(processes, work, tag, calls, hold)
        report = {"relay": "hotline-b2bua", "calls": calls, "calls_set_up": min(len(a_ports), len(b_ports))}
        if a_ports and b_ports:
            report.update(run_generator(processes, work, rtpgen, tag, a_ports, b_ports, seconds, engine_process.pid))
        print(f"  media engine {calls} calls: {report}", flush=True)
        results.append(report)
        processes.stop_all()

        rtpengine = shutil.which("rtpengine")
        if not rtpengine:
            results.append({"relay": "rtpengine", "calls": calls, "error": "rtpengine not installed"})
            continue
        tag = f"media-rtpengine-{calls}"
        relay = processes.start(
            tag,
            [
                rtpengine, "--table=-1", "--config-file=none", f"--interface={LOCALHOST}",
                f"--listen-ng={LOCALHOST}:{RTPENGINE_NG}", f"--port-min={RTPENGINE_MEDIA[0]}",
                f"--port-max={RTPENGINE_MEDIA[1]}", "--foreground", "--log-stderr",
                "--log-level=4", "--num-threads=1", f"--pidfile={work / 'rtpengine.pid'}",
            ],
            cpu=0,
        )
        time.sleep(1)
        report = {"relay": "rtpengine", "calls": calls}
        try:
            a_ports, b_ports = rtpengine_calls(NgClient(RTPENGINE_NG), calls)
            report["calls_set_up"] = min(len(a_ports), len(b_ports))
            report.update(run_generator(processes, work, rtpgen, tag, a_ports, b_ports, seconds, relay.pid))
        except (OSError, ValueError) as error:
            report["error"] = f"ng control failed: {error}"
        print(f"  media rtpengine {calls} calls: {report}", flush=True)
        results.append(report)
        processes.stop(relay)
    return results


# --- d. memory per call ---------------------------------------------------------------


def measure_memory(processes, work, engine, plan):
    engine_process = start_engine(processes, engine, work)
    time.sleep(1)
    samples = [{"calls": 0, "rss_kib": rss_kib(engine_process.pid)}]
    processes.start(
        "memory-agent",
        sipp("agent_hold.xml", AGENT, 19000, ["-key", "rtp_port", "9", "-trace_logs",
                                              "-log_file", str(work / "memory-agent-relay.log")]),
    )
    time.sleep(0.3)
    up = 0
    total = max(plan["memory_calls"])
    hold_ms = int((total / 200 + 30 + plan["settle_seconds"]) * 1000)
    for index, calls in enumerate(plan["memory_calls"]):
        log = work / f"memory-caller-{index}-relay.log"
        processes.start(
            f"memory-caller-{index}",
            sipp(
                "caller_hold.xml", CALLER + 2 * index, 19100 + 100 * index,
                [
                    "-key", "rtp_port", "9", "-key", "caller_user", "bg",
                    "-r", "200", "-m", str(calls - up), "-d", str(hold_ms),
                    "-timeout", str(int(hold_ms / 1000) + 30), "-timeout_error",
                    "-trace_logs", "-log_file", str(log),
                ],
                f"{LOCALHOST}:{ENGINE_SIP}",
            ),
        )
        expected = calls - up
        established = wait_for(lambda: len(logged_ports(log)) >= expected, expected / 200 + 30)
        up = calls
        time.sleep(2)
        samples.append({
            "calls": calls,
            "established": bool(established),
            "rss_kib": rss_kib(engine_process.pid),
        })
        print(f"  memory: {samples[-1]}", flush=True)
    # The setup's transactions linger 32 s after the last call was answered (RFC 6026
    # Timer L, RFC 3261 Timer K/D); once they have ended, what remains is the held calls.
    time.sleep(plan["settle_seconds"])
    samples.append({
        "calls": up,
        "established": samples[-1].get("established"),
        "settled": plan["settle_seconds"],
        "rss_kib": rss_kib(engine_process.pid),
    })
    print(f"  memory: {samples[-1]}", flush=True)
    processes.stop_all()
    base = samples[0]["rss_kib"] or 0
    for sample in samples[1:]:
        if sample["rss_kib"]:
            sample["kib_per_call"] = (sample["rss_kib"] - base) / sample["calls"]
    return {"samples": samples}


# --- report ---------------------------------------------------------------------------


def command_output(command):
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
        return (result.stdout + result.stderr).strip().splitlines()[0] if (result.stdout + result.stderr).strip() else ""
    except (OSError, subprocess.TimeoutExpired):
        return "not found"


def machine():
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {
        "host": platform.node(),
        "nproc": os.cpu_count(),
        "cpu": model,
        "kernel": platform.release(),
        "load_average_start": list(os.getloadavg()),
    }


def versions(engine):
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"], capture_output=True, text=True, check=False)
    return {
        "engine": head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else ""),
        "engine_binary": str(engine),
        "sipp": command_output(["sipp", "-v"]).replace("\x1b", ""),
        "kamailio": command_output(["kamailio", "-v"]),
        "rtpengine": command_output(["rtpengine", "--version"]),
    }


def fmt(value, digits=0):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown(result):
    lines = [f"# Load results {result['date']} on {result['machine']['host']}", ""]
    if result["smoke"]:
        lines += ["**Smoke run**: a few calls per part to prove the harness works; the figures are not "
                  "capacities.", ""]
    load = result["machine"]
    lines += [
        f"Machine: {load['nproc']} cores, {load['cpu']}, kernel {load['kernel']}. Load average at "
        f"start {', '.join(f'{x:.2f}' for x in load['load_average_start'])}, at end "
        f"{', '.join(f'{x:.2f}' for x in load['load_average_end'])}"
        + (" (**noisy machine**: other work was running)" if load["load_average_start"][0] > 0.5 else "") + ".",
        "",
        f"Versions: engine `{result['versions']['engine']}`, {result['versions']['sipp']}, "
        f"{result['versions']['kamailio']}, {result['versions']['rtpengine']}.",
        "",
    ]
    if "cps" in result:
        cps = result["cps"]
        lines += ["## Calls per second (0 failed, 0 retransmissions)", "",
                  "| path | highest passing rate | steps (rate: ok/failed/retransmissions) |", "|---|---|---|"]
        for name in ("hotline-b2bua", "kamailio", "sipp direct"):
            subject = cps.get(name, {})
            steps = ", ".join(f"{s['rate']}: {s['successful']}/{s['failed']}/{s['retransmissions']}"
                              for s in subject.get("steps", []))
            lines.append(f"| {name} | {fmt(subject.get('best'))} | {steps or subject.get('error', '')} |")
        lines += ["", f"Engine / Kamailio: {fmt(cps.get('ratio_to_kamailio'), 2)}", ""]
    if "transfer" in result:
        lines += ["## Transfer setup latency (µs)", "",
                  "Capture: the trigger packet reaching the engine to the INVITE leaving it, from "
                  "dumpcap on `lo`. Records: the engine's transfer records, from the call task "
                  "holding the last key to the INVITE's send returning; bridge: the remote's 200 "
                  "to media bridged.", "",
                  "| trigger | calls up | bridged / attempted | capture p50 | capture p99 | capture max "
                  "| records p50 | records p99 | records max | bridge p50 | bridge p99 | bridge max |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        empty = {"p50": None, "p99": None, "max": None}
        for row in result["transfer"]:
            invite, bridge = row["invite_us"], row["bridge_us"]
            wire = row.get("capture_invite_us") or empty
            lines.append(f"| {row['trigger']} | {row['calls_up']} | {row['bridged']} / {row['transfers']} | "
                         f"{fmt(wire['p50'])} | {fmt(wire['p99'])} | {fmt(wire['max'])} | "
                         f"{fmt(invite['p50'])} | {fmt(invite['p99'])} | {fmt(invite['max'])} | "
                         f"{fmt(bridge['p50'])} | {fmt(bridge['p99'])} | {fmt(bridge['max'])} |")
        lines.append("")
    if "relay_reference" in result:
        lines += ["## Reference: one in-dialog INFO relayed, at the transfers' pace (µs)", "",
                  "From the INFO reaching the engine or the proxy to the INFO leaving it, from "
                  "dumpcap on `lo`: one call per transfer slot, one INFO per call. It shows "
                  "what handling one request in an otherwise idle process costs on this "
                  "machine.", "",
                  "| path | calls | p50 | p99 | max |", "|---|---|---|---|---|"]
        for name, row in result["relay_reference"].items():
            relayed = row.get("relayed_us") or {"p50": None, "p99": None, "max": None}
            lines.append(f"| {name} | {row.get('calls', row.get('error', ''))} | {fmt(relayed['p50'])} | "
                         f"{fmt(relayed['p99'])} | {fmt(relayed['max'])} |")
        lines.append("")
    if "media" in result:
        lines += ["## Anchored media (G.711, 20 ms, both directions; relay on core 0, generator on core 1)", "",
                  "| relay | calls | packets sent | lost | delay p50 µs | delay p99 µs | max µs | relay CPU ms per 1,000 packets | % core per 1,000 pps | packets per core-second |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for row in result["media"]:
            delay = row.get("delay_us", {})
            lines.append(f"| {row['relay']} | {row.get('calls_set_up', 0)} of {row['calls']} | {fmt(row.get('sent'))} | "
                         f"{fmt(row.get('lost'))} | {fmt(delay.get('p50'))} | {fmt(delay.get('p99'))} | "
                         f"{fmt(delay.get('max'))} | {fmt(row.get('relay_cpu_ms_per_1000_packets'), 2)} | "
                         f"{fmt(row.get('relay_core_percent_per_1000_pps'), 2)} | "
                         f"{fmt(row.get('packets_per_core_second'))} |")
        lines.append("")
    if "memory" in result:
        lines += ["## Resident memory (VmRSS) with calls up, media anchored, no RTP", "",
                  "| calls | when | established | VmRSS KiB | KiB per call over idle |", "|---|---|---|---|---|"]
        for sample in result["memory"]["samples"]:
            when = f"{sample['settled']} s later" if sample.get("settled") else "2 s after setup"
            if not sample["calls"]:
                when = "idle"
            lines.append(f"| {sample['calls']} | {when} | {sample.get('established', '-')} | {fmt(sample['rss_kib'])} | "
                         f"{fmt(sample.get('kib_per_call'), 1)} |")
        lines.append("")
    lines += ["## Command lines", "", "```"] + result["commands"] + ["```", ""]
    return "\n".join(lines)


def plot(result, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for trigger in ("info", "rfc4733"):
        for source, name, keys in (("capture_invite_us", "capture", ("p50", "p99")), ("invite_us", "records", ("p50",))):
            rows = [row for row in result.get("transfer", [])
                    if row["trigger"] == trigger and (row.get(source) or {}).get("count")]
            for key in keys:
                if name == "records":
                    style = ":x"
                elif key == "p50":
                    style = "-o"
                else:
                    style = "--o"
                axes[0].plot([row["calls_up"] for row in rows], [row[source][key] for row in rows], style,
                             label=f"{trigger} {name} {key}")
    # The references: one in-dialog INFO relayed by an idle process, one line per path.
    for name, style in (("kamailio", "k-."), ("hotline-b2bua", "c-.")):
        relayed = result.get("relay_reference", {}).get(name, {}).get("relayed_us") or {}
        if relayed.get("count"):
            axes[0].axhline(relayed["p50"], linestyle=style[1:], color=style[0],
                            label=f"{name}: one INFO relayed, p50")
    axes[0].set_xscale("log")
    axes[0].set_xlabel("calls up")
    axes[0].set_ylabel("trigger to INVITE (µs)")
    axes[0].set_title("Transfer setup latency")
    axes[0].legend()
    for relay in ("hotline-b2bua", "rtpengine", "none (loopback)"):
        rows = [row for row in result.get("media", []) if row["relay"] == relay and row.get("delay_us")]
        for key, style in (("p50", "-o"), ("p99", "--o")):
            axes[1].plot([row["calls"] for row in rows], [row["delay_us"][key] for row in rows], style,
                         label=f"{relay} {key}")
    axes[1].set_xlabel("concurrent G.711 calls")
    axes[1].set_ylabel("added one-way delay (µs)")
    axes[1].set_title("Relay delay")
    axes[1].legend()
    figure.suptitle(("smoke run, " if result["smoke"] else "") + f"{result['date']} {result['machine']['host']}")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", required=True, help="release binary of hotline-b2bua")
    parser.add_argument("--rtpgen", required=True, help="RTP generator built from benches/load/rtpgen.rs")
    parser.add_argument("--smoke", action="store_true", help="a few calls per part, about two minutes in all")
    parser.add_argument("--only", default="cps,transfer,media,memory",
                        help="comma-separated parts to run: cps, transfer, media, memory")
    parser.add_argument("--triggers", default="info,rfc4733",
                        help="comma-separated transfer triggers to measure: info, rfc4733")
    parser.add_argument("--results", default=str(ROOT / "benches" / "results"), help="output directory")
    parser.add_argument("--tag", default="", help="suffix for the results files' names, such as cps")
    args = parser.parse_args()
    args.engine = str(Path(args.engine).resolve())
    args.rtpgen = str(Path(args.rtpgen).resolve())
    parts = set(args.only.split(","))
    plan = SMOKE if args.smoke else FULL

    # 5,000 calls use four relay sockets each.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(hard, 65536), max(hard, 65536)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    plan = dict(plan)
    # Four relay sockets per call, plus the engine's prebound pairs and its other files:
    # a step that does not fit under the open-files limit is cut to the most that does.
    fitting = (limit - 512) // 4 // 100 * 100
    plan["memory_calls"] = sorted({min(calls, fitting) for calls in plan["memory_calls"]})

    work = Path(tempfile.mkdtemp(prefix="hotline-load-"))
    processes = Processes(work)
    date = datetime.datetime.now().strftime("%Y-%m-%d")
    result = {"date": date, "smoke": args.smoke, "machine": machine(), "versions": versions(args.engine),
              "plan": plan, "open_files_limit": limit, "work_dir": str(work)}
    print(f"load harness: work directory {work}", flush=True)
    try:
        if "cps" in parts:
            result["cps"] = measure_cps(processes, work, args.engine, plan)
        if "transfer" in parts:
            result["transfer"] = measure_transfer(processes, work, args.engine, plan, args.triggers.split(","))
            result["relay_reference"] = measure_relay_reference(processes, work, args.engine, plan)
        if "media" in parts:
            result["media"] = measure_media(processes, work, args.engine, args.rtpgen, plan)
        if "memory" in parts:
            result["memory"] = measure_memory(processes, work, args.engine, plan)
    finally:
        processes.stop_all()
    result["machine"]["load_average_end"] = list(os.getloadavg())
    result["commands"] = processes.commands

    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{date}-{result['machine']['host']}" + ("-smoke" if args.smoke else "")
    stem += f"-{args.tag}" if args.tag else ""
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    (out / f"{stem}.md").write_text(markdown(result))
    if plot(result, out / f"{stem}.png"):
        print(f"wrote {out / stem}.md, .json, .png")
    else:
        print(f"wrote {out / stem}.md, .json (matplotlib missing: no plot)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
