"""``lookalike eval``: what the subcommand runs; its arguments are in ``infra.commands.evaluation``."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

from lookalike.settings import Settings


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from infra.evaluation.dataset import load_dataset

    dataset = load_dataset(Path(args.dataset))
    say = (lambda m: print(m, file=sys.stderr)) if args.json else print
    say(f"dataset {dataset.root}: {len(dataset.train)} training images, {len(dataset.test)} queries")
    if args.in_memory:
        from infra.evaluation.in_memory import run_in_memory
        from lookalike.embedder import TimmEmbedder

        report = run_in_memory(
            dataset, TimmEmbedder(settings), max_pixels=settings.max_image_pixels, batch_size=settings.batch_size
        )
    else:
        from infra.evaluation.pipeline import run_pipeline
        from infra.local import stack

        env = dict(os.environ)
        mode = args.stack
        if mode == "auto":
            missing = stack.missing_parts(settings)
            if missing:
                say(f"the configured stack does not answer ({', '.join(missing)}): using a private one")
            mode = "private" if missing else "configured"
        with contextlib.ExitStack() as scope:
            target = settings
            if mode == "private":
                target = scope.enter_context(stack.private_stack(settings, env, keep=args.keep, say=say))
            report = run_pipeline(
                target,
                dataset,
                env,
                workers=args.workers,
                keep=args.keep,
                timeout=args.timeout,
                stack_label=mode,
                say=say,
            )
    print(json.dumps(report.to_dict()) if args.json else "\n".join(report.lines()))
    return 0
