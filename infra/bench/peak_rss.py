"""Run ``lookalike`` in this process and write its peak resident memory (``VmHWM``) at exit.

    python -m infra.bench.peak_rss OUT_FILE backfill --dry-run --json

Why not ``wait4``/``getrusage`` from the parent: a child forked from a large parent inherits the
parent's high-water mark until it calls ``exec``, and Linux keeps that pre-exec peak in the child's
``ru_maxrss``. A parent that loaded a model (1 GB) therefore reports 1 GB for any child. ``VmHWM``
in ``/proc/self/status`` belongs to the address space that ``exec`` created, so it is the
command's own peak.
"""

from __future__ import annotations

import atexit
import os
import runpy
import sys
from pathlib import Path

from infra.bench.memory import peak_rss_mb


def main() -> None:
    if len(sys.argv) < 3:
        raise SystemExit("usage: python -m infra.bench.peak_rss OUT_FILE <lookalike arguments>")
    out = Path(sys.argv[1])
    atexit.register(lambda: out.write_text(f"{peak_rss_mb(os.getpid())}\n"))  # "None" fails the reader
    sys.argv = ["lookalike", *sys.argv[2:]]
    runpy.run_module("infra.cli", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
