"""``lookalike stack up|status|down``: the local stack as a user drives it, and what it tells them.

Every hint names the command as it can be typed from here (``lookalike.process.command_name``:
``.venv/bin/lookalike`` until the venv is activated), and ``up`` says when it changes how many
workers run rather than stopping one without a word.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from lookalike.process import HelpFormatter, command_name
from lookalike.settings import Settings


def cmd_stack(args: argparse.Namespace, settings: Settings) -> int:
    from infra.local import stack

    if args.action == "up":
        print(f"starting the local stack (state in {Path(settings.state_dir).resolve()})")
        stack.up(settings, dict(os.environ), workers=args.workers, dashboard=not args.no_dashboard, api=not args.no_api)
        print("ready. what next:")
        print("\n".join(next_steps(settings, dashboard=not args.no_dashboard, api=not args.no_api)))
        return 0
    if args.action == "down":
        stack.down(settings, keep_data=args.keep_data)
        return 0
    report = stack.status(settings)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_status(report)
    return 0 if report["parts"] and all(p["state"] == "up" for p in report["parts"]) else 1


DEV_TOKEN = "lookalike-api-dev-token"  # Settings' default: public, so it may be printed


def next_steps(settings: Settings, dashboard: bool = True, api: bool = True) -> list[str]:
    """Where the stack answers and the commands to go on with, typed as they work from here: the
    last lines of ``stack up`` and of ``infra/demo.sh`` (which scroll the URLs away otherwise)."""
    la = command_name()
    lines = []
    if dashboard:
        lines.append(f"  dashboard  http://127.0.0.1:{settings.dashboard_port}  (search by image; Live index tab)")
    if api:
        token = settings.api_token.get_secret_value()
        shown = token if token == DEV_TOKEN else "$LOOKALIKE_API_TOKEN"
        where = (
            "the local default" if token == DEV_TOKEN else "the LOOKALIKE_API_TOKEN you set, in .env or the environment"
        )
        lines += [
            f"  api        {settings.api_url}/docs  (bearer token: {shown}, {where})",
            f'             curl -H "Authorization: Bearer {shown}" -F image=@IMAGE "{settings.api_url}/v1/search?k=5"',
        ]
    lines += [
        f"  upload     {la} upload DIR  (then `{la} objects KEY`: indexed, or dead-lettered and why)",
        f"  search     {la} search IMAGE",
        f"  stop       {la} stack down",
    ]
    if la != "lookalike":  # the venv's bin is not on the PATH
        lines.append(f"  venv       `source {Path(la).parent / 'activate'}` and these are plain `lookalike ...`")
    return lines


def print_next_steps() -> None:
    """``infra/demo.sh``'s closing lines, with the settings it ran with."""
    print("what next (the stack keeps running):")
    print("\n".join(next_steps(Settings())))


def print_status(report: dict[str, Any]) -> None:
    if not report["parts"]:
        print(f"the local stack is not running (no state in {report['state_dir']})")
    for p in report["parts"]:
        print(f"{p['name']:<10} {p['state']:<9} pid {p['pid']:<7} {p['address']}")
    s3 = report["s3"]
    print(f"s3         {s3['endpoint']} bucket {s3['bucket']}, access key id {s3['access_key_id']}")
    print(f"           secret: {s3['secret']}")
    print(f"index      {index_line(report['index'])}")


def index_line(idx: dict[str, Any]) -> str:
    """The index's line of ``stack status``: its size, or why it is unknown (never "None vectors")."""
    where = f"{idx['uri']} collection {idx['collection']}"
    if idx.get("vectors") is not None:
        return f"{where}: {idx['vectors']} vectors"
    if idx.get("error"):
        return f"{where}: size unknown ({str(idx['error']).splitlines()[0]})"
    return f"{where}: size unknown (Milvus is not running)"


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``stack`` and its actions."""
    p = sub.add_parser(
        "stack",
        help="run the local stack (SeaweedFS S3, Tansu Kafka, Milvus Lite, workers, API, dashboard)",
        description="Run every part on 127.0.0.1 in the background, no Docker; state and logs in LOOKALIKE_STATE_DIR.",
        formatter_class=HelpFormatter,
    )
    ssub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    up = ssub.add_parser("up", help="start everything in the background (idempotent)", formatter_class=HelpFormatter)
    up.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes (default: as many as the running stack has, 1 on a new one; fewer stops some)",
    )
    up.add_argument("--no-dashboard", action="store_true", help="do not start the dashboard")
    up.add_argument("--no-api", action="store_true", help="do not start the HTTP query API")
    st = ssub.add_parser(
        "status", help="each part's address, pid and state, and the index's size", formatter_class=HelpFormatter
    )
    st.add_argument("--json", action="store_true", help="print one JSON object")
    dn = ssub.add_parser("down", help="stop what `up` started", formatter_class=HelpFormatter)
    dn.add_argument("--keep-data", action="store_true", help="keep the Milvus Lite and SeaweedFS data directories")
    p.set_defaults(func=cmd_stack)
