"""Image build times (cold and warm cache), the image's size, and the time to measure it.

Run as root: .venv/bin/python bench/image_build.py [--recipe debian-trixie] [--skip-cold]

Cold: an empty cache directory, so every pinned .deb and wheel is downloaded first (the
mirror must still carry the locked versions). Warm: the builder's default cache, filled by the
cold run or earlier builds. Each build runs the real `mosaik image build` steps; the per-step
durations come from its progress display. Then every TDX register of the built image is
predicted offline (attestation.measure) and timed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)

from images import read_manifest  # noqa: E402
from images.artifacts import measure_artifacts  # noqa: E402


def build(recipe: str, out: Path, cache: Path | None) -> float:
    argv = [sys.executable, "-m", "images", "build", recipe, "--out", str(out)]
    if cache is not None:
        argv += ["--cache", str(cache)]
    began = time.monotonic()
    subprocess.run(argv, cwd=ROOT, check=True)
    return time.monotonic() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="debian-trixie")
    parser.add_argument("--skip-cold", action="store_true", help="only the warm-cache build")
    args = parser.parse_args()
    results: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="mosaik-image-bench-") as scratch:
        work = Path(scratch)
        if not args.skip_cold:
            cold = build(args.recipe, work / "cold", work / "empty-cache")
            results.append(("build, cold cache (downloads every pinned input)", f"{cold:.1f} s"))
        warm = build(args.recipe, work / "warm", None)
        results.append(("build, warm cache", f"{warm:.1f} s"))
        image = work / "warm"
        manifest = read_manifest(image)
        for name, record in sorted(manifest["artifacts"].items()):
            results.append((f"size of {name}", f"{record['size'] / 2**20:.1f} MiB"))
        rootfs = manifest["rootfs"]
        results.append(
            ("root filesystem (uncompressed cpio)", f"{rootfs['cpio_bytes'] / 2**20:.1f} MiB")
        )
        results.append(("root filesystem entries", str(rootfs["entries"])))
        began = time.monotonic()
        document = measure_artifacts(
            image, manifest["cmdline"], manifest["vm"]["memory"], int(manifest["vm"]["cpus"]), None
        )
        results.append(("measure MRTD, RTMR1, RTMR2 offline", f"{time.monotonic() - began:.2f} s"))
        for register, values in document["measurements"].items():
            results.append((register, values["expected_any"][0][:24] + "..."))
    width = max(len(label) for label, _ in results)
    print()
    for label, value in results:
        print(f"{label:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
