"""The bench's private stack and worker processes, and the upload that fills the topic before (b).

Everything runs on a private stack (``infra.local.stack.private_stack``: SeaweedFS publishing straight
to Kafka, names scoped to ``bench``) so the bench never touches the user's bucket or index. Workers
are real worker processes (``infra.local.stack.start_workers``); the bench reads their ``/metrics``
for readiness and per-stage timings and their ``/proc`` status for peak memory.
"""

from __future__ import annotations

import contextlib
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from infra.bench.images import BenchImage
from infra.bench.memory import peak_rss_mb
from infra.bench.stats import parse_samples
from infra.local import stack
from lookalike.bus import group_offsets
from lookalike.errors import LookalikeError
from lookalike.settings import Settings
from lookalike.store import ObjectStore

Say = Callable[[str], None]


class BenchError(LookalikeError):
    """The bench could not finish a measure (a worker died, the index never filled up)."""


@contextlib.contextmanager
def bench_stack(settings: Settings, env: Mapping[str, str], say: Say) -> Iterator[Settings]:
    """SeaweedFS, Tansu and Milvus Lite on free ports in a temporary state dir; all stopped after."""
    with stack.private_stack(settings.scoped("bench"), env, say=say) as s:
        yield s


def server_pids(settings: Settings) -> dict[str, list[int]]:
    """The private stack's recorded server pids by part (s3: ``weed`` itself, kafka, milvus), for CPU accounting."""
    return {
        name: [part.pid]
        for name, part in stack.load_state(settings).items()
        if part.pid and not name.startswith("worker")
    }


@dataclass
class Workers:
    """The bench's worker processes, each with its own metrics port."""

    settings: Settings
    env: Mapping[str, str]
    parts: list[stack.Part] = field(default_factory=list)
    spawned_at: float = 0.0

    def start(self, n: int) -> None:
        self.spawned_at = time.perf_counter()
        self.parts += stack.start_workers(self.settings, self.env, n)

    def wait_first_ready(self, timeout: float) -> float:
        """perf_counter time at which the first worker reported ``lookalike_worker_ready 1``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for part in self.parts:
                if stack.probe(self.settings, part):
                    return time.perf_counter()
            self.check_alive()
            time.sleep(0.05)
        raise BenchError(f"no worker became ready within {timeout:.0f} s")

    def wait_all_ready(self, timeout: float) -> None:
        for part in self.parts:
            stack.wait_ready(self.settings, part, timeout)

    def check_alive(self) -> None:
        try:
            stack.check_alive(self.parts)
        except stack.StackError as exc:
            raise BenchError(str(exc)) from exc

    def metrics(self) -> list[str]:
        texts = []
        for part in self.parts:
            with urllib.request.urlopen(part.address, timeout=5) as r:
                texts.append(r.read().decode(errors="replace"))
        return texts

    def metric_sum(self, name: str, texts: Sequence[str] | None = None) -> float | None:
        """A counter summed over labels and workers (None when no worker exposes it yet)."""
        texts = self.metrics() if texts is None else texts
        values = [v for t in texts for sample, _, v in parse_samples(t) if sample == name]
        return sum(values) if values else None

    def pids(self) -> list[int]:
        return [part.pid for part in self.parts if part.pid]

    def peak_rss_mb(self) -> list[float]:
        return [m for part in self.parts if (m := peak_rss_mb(part.pid)) is not None]

    def stop(self) -> None:
        for part in reversed(self.parts):  # one at a time: a group can wedge if members leave mid-rebalance
            stack.stop_part(part)
        self.parts.clear()


STARTUP_METRIC = "lookalike_worker_startup_seconds"


def startup_parts(texts: Sequence[str]) -> dict[str, float] | None:
    """The start-up steps (imports, model, connect, join: ``consumers.runner``) of the worker that got
    ready first, i.e. with the shortest total, in seconds; None when no worker reports them."""
    per_worker = []
    for text in texts:
        steps = {labels["step"]: v for name, labels, v in parse_samples(text) if name == STARTUP_METRIC}
        if steps:
            per_worker.append(steps)
    if not per_worker:
        return None
    return {k: round(v, 2) for k, v in min(per_worker, key=lambda steps: sum(steps.values())).items()}


def upload_all(settings: Settings, images: Sequence[BenchImage], concurrency: int = 8) -> float:
    """PUT every image; returns the seconds taken (SeaweedFS's filer sends each event to Kafka
    asynchronously, within milliseconds of the PUT's answer).

    Raises ``BenchError`` when the topic then holds no events: the notification path is broken and
    waiting for the index would be pointless.
    """
    store = ObjectStore(settings)
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="bench-put") as pool:
        for f in [pool.submit(store.put_bytes, settings.bucket, im.key, im.data, im.content_type) for im in images]:
            f.result()
    seconds = time.perf_counter() - start
    # Tansu reports a partition's end as the start of its last record batch + 1, so this can fall
    # short of the true count; an empty topic, though, means the notification path is broken.
    deadline = time.monotonic() + 10
    while not sum(o.end for o in group_offsets(settings).values()):
        if time.monotonic() > deadline:
            raise BenchError(f"{len(images)} images uploaded but topic {settings.topic} has no events")
        time.sleep(0.2)
    return seconds
