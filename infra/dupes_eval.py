"""``python -m infra.dupes_eval [--model M] [--json]``, kept because issues and notes name it: runs
``infra.evaluation.dupes``, which measures the near-duplicate threshold of a model and prints the
line that puts it in force (``LOOKALIKE_DUPLICATE_THRESHOLD=...``, or the family's entry in
``lookalike.families.CALIBRATED_THRESHOLDS``)."""

if __name__ == "__main__":
    from infra.evaluation.dupes import main

    raise SystemExit(main())
