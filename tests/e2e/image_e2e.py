"""End to end: build the default image twice, compare every artifact, boot it, talk to the node.

Run as root: ``python tests/e2e/image_e2e.py`` (``make e2e-image``). Steps:
1. build the recipe twice into two directories from the same lock and cache;
2. compare the sha256 of every artifact (and the manifests): any difference fails;
3. boot the first build under QEMU TCG with Debian's OVMF (direct kernel boot), kernel
   parameters ``mosaik.network=... mosaik.tags=...``, user networking with host ports forwarded
   to the node's UDP and metrics/admin ports;
4. wait, on the serial console, for the guest config line (tsm loaded, configfs mounted), the
   node unit's start and the node's ready line; then GET /healthz and /status through the
   forwarded port and check the node runs on the network and tags given on the command line.
Deadlines scale with TIME_FACTOR. Without qemu-system-x86_64 the test prints why and exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from images.wheels import copy_source  # noqa: E402

TIME_FACTOR = float(os.environ.get("TIME_FACTOR", "1"))
NETWORK = "e2e-image"
TAGS = ("e2e", "sensor")
READY = re.compile(r"node ready: peer_id=([0-9a-f]{64})")
GUEST = re.compile(r"mosaik-guest-config: tdx=.* tsm=loaded configfs=mounted")
STARTED = re.compile(r"Started .*mosaik-node\.service")


def log(message: str) -> None:
    print(f"[image-e2e {time.strftime('%H:%M:%S')}] {message}", flush=True)


def build(recipe: str, out: Path, cache: Path | None, source: Path) -> float:
    argv = [sys.executable, "-m", "images", "build", recipe, "--out", str(out)]
    argv += ["--source", str(source)]
    if cache is not None:
        argv += ["--cache", str(cache)]
    began = time.monotonic()
    subprocess.run(argv, cwd=ROOT, check=True)
    return time.monotonic() - began


def compare(first: Path, second: Path) -> list[str]:
    manifests = [json.loads((d / "manifest.json").read_text()) for d in (first, second)]
    names = sorted(set(manifests[0]["artifacts"]) | set(manifests[1]["artifacts"]))
    differing = []
    for name in [*names, "manifest.json"]:
        digests = [_sha256(d / name) for d in (first, second)]
        same = digests[0] == digests[1]
        log(f"  {'same' if same else 'DIFF'}  {digests[0][:16]}  {name}")
        if not same:
            differing.append(name)
    return differing


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    pattern: re.Pattern[str], serial: Path, qemu: subprocess.Popen[bytes], limit: float
) -> re.Match[str]:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        text = serial.read_text(errors="replace") if serial.exists() else ""
        match = pattern.search(text)
        if match:
            return match
        if qemu.poll() is not None:
            raise AssertionError(f"QEMU exited ({qemu.returncode}) before {pattern.pattern!r}")
        time.sleep(0.5)
    raise AssertionError(f"no {pattern.pattern!r} on the serial console within {limit:.0f} s")


def _plain(serial: Path) -> list[str]:
    """Serial console lines without systemd's colour escapes."""
    return re.sub(r"\x1b\[[0-9;:]*m", "", serial.read_text(errors="replace")).splitlines()


def http_get(port: int, path: str, limit: float) -> tuple[int, bytes]:
    deadline = time.monotonic() + limit
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as reply:
                return reply.status, reply.read()
        except (urllib.error.URLError, OSError) as exc:
            last = exc
            time.sleep(1)
    raise AssertionError(f"GET {path} through the forwarded port failed: {last}")


def boot_and_check(image: Path, work: Path) -> float:
    udp_port, http_port = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM)
    serial = work / "serial.log"
    env = dict(
        os.environ,
        MOSAIK_ACCEL="tcg",
        MOSAIK_SERIAL=f"file:{serial}",
        MOSAIK_UDP_PORT=str(udp_port),
        MOSAIK_HTTP_PORT=str(http_port),
        MOSAIK_APPEND=f"mosaik.network={NETWORK} mosaik.tags={','.join(TAGS)}",
    )
    log(f"booting {image} under TCG (udp {udp_port}, http {http_port}, serial {serial})")
    began = time.monotonic()
    with (work / "qemu.stderr").open("wb") as stderr:
        qemu = subprocess.Popen(
            ["/bin/sh", str(image / "run-vm.sh")],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    try:
        limit = 600 * TIME_FACTOR
        wait_for(GUEST, serial, qemu, limit)
        log(f"guest config ran: tsm loaded, configfs mounted ({time.monotonic() - began:.0f} s)")
        wait_for(STARTED, serial, qemu, limit)
        peer = wait_for(READY, serial, qemu, limit).group(1)
        ready = time.monotonic() - began
        log(f"node ready on the serial console after {ready:.0f} s: peer {peer[:16]}")
        failed = [line for line in _plain(serial) if "FAILED" in line or "DEPEND" in line]
        assert not failed, "units failed at boot:\n" + "\n".join(failed)
        status, body = http_get(http_port, "/healthz", 120 * TIME_FACTOR)
        assert status == 200 and body == b"ok\n", (status, body)
        status, body = http_get(http_port, "/status", 60 * TIME_FACTOR)
        document = json.loads(body)
        assert status == 200, status
        assert document["network"] == NETWORK, document["network"]
        assert document["peer_id"] == peer, (document["peer_id"], peer)
        assert len(document["tags"]) == len(TAGS), document["tags"]
        network = document["network"]
        log(f"no unit failed; /healthz ok; /status: network {network}, {len(TAGS)} tags, same peer")
        return ready
    except AssertionError:
        tail = serial.read_text(errors="replace")[-4000:] if serial.exists() else ""
        log(f"serial console tail:\n{tail}")
        raise
    finally:
        os.killpg(qemu.pid, signal.SIGTERM)
        try:
            qemu.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(qemu.pid, signal.SIGKILL)
            qemu.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="debian-trixie")
    parser.add_argument("--cache", type=Path, help="image cache (default: the builder's)")
    parser.add_argument("--keep", action="store_true", help="keep the builds and serial log")
    args = parser.parse_args()
    if shutil.which("qemu-system-x86_64") is None:
        print("SKIPPED: qemu-system-x86_64 is not installed (Debian package qemu-system-x86)")
        return 0
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="mosaik-image-e2e-"))
    try:
        # One snapshot of the runtime's source for both builds: the claim under test is
        # "same lock, cache and source give the same bytes", whatever happens to the tree.
        source = copy_source(ROOT, work / "source")
        first, second = work / "build-1", work / "build-2"
        log(f"build 1 of {args.recipe} -> {first}")
        one = build(args.recipe, first, args.cache, source)
        log(f"build 2 of {args.recipe} -> {second}")
        two = build(args.recipe, second, args.cache, source)
        log(f"builds took {one:.0f} s and {two:.0f} s; comparing every artifact")
        differing = compare(first, second)
        if differing:
            log(f"FAILED: the two builds differ in {', '.join(differing)}")
            return 1
        log("the two builds are bit-identical")
        ready = boot_and_check(first, work)
        size = sum(p.stat().st_size for p in first.iterdir())
        log(
            f"PASSED in {time.monotonic() - started:.0f} s: builds {one:.0f} s + {two:.0f} s, "
            f"boot to node ready {ready:.0f} s (TCG), image {size / 2**20:.1f} MiB"
        )
        print("1 passed, 0 failed")
        return 0
    except (AssertionError, subprocess.CalledProcessError) as exc:
        log(f"FAILED: {exc}")
        print("0 passed, 1 failed")
        return 1
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
