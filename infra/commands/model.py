"""``lookalike model export``: build the serving model (ONNX) from timm and torch, once per model and
weights. Its parser imports nothing heavy; torch and timm load only when it runs (``infra.commands``)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from lookalike.process import HelpFormatter
from lookalike.settings import Settings


def export(args: argparse.Namespace, settings: Settings) -> int:
    """Export (or, unless ``--force``, find) the configured model and print where it is."""
    from lookalike.embedder import ModelLoadError, torch_installed

    if not torch_installed():
        raise ModelLoadError("exporting needs torch and timm: install them with pip install '.[model]'")
    from lookalike.runtime import export_model

    done = export_model(settings, force=args.force)
    record = {"model": done.model, "weights": done.weights, "dim": done.dim, "path": str(done.path),
              "sha256": done.sha256, "cosine_distance_to_torch": done.distance}  # fmt: skip
    if args.json:
        print(json.dumps(record))
    else:
        print(f"{done.model} ({done.weights}, dim {done.dim}) exported to {done.path}")
        print(f"sha256 {done.sha256}; largest cosine distance to torch on the probe: {done.distance:.1e}")
    return 0


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``model export`` to the ``lookalike`` command."""
    p = sub.add_parser(
        "model",
        help="build the serving model: export the timm model to ONNX (needs the [model] install)",
        description="Workers, the API and search serve an ONNX export of the model with no torch. This builds it "
        "with timm and torch into LOOKALIKE_MODEL_CACHE, beside its tag (model, weights, dim) and sha256.",
        formatter_class=HelpFormatter,
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    e = actions.add_parser(
        "export",
        help="export LOOKALIKE_MODEL with LOOKALIKE_WEIGHTS (or timm's pretrained weights)",
        description="Export the configured model to ONNX, check it against torch on a probe batch, and store it "
        "with its tag. An export already stored for the same model and weights is kept (see --force).",
        formatter_class=HelpFormatter,
    )
    e.add_argument("--force", action="store_true", help="export again even if a stored export exists")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.set_defaults(func=export)
