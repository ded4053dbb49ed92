"""``python -m infra.dupes_eval``, kept because issues and notes name it: runs ``infra.evaluation.dupes``."""

if __name__ == "__main__":
    from infra.evaluation.dupes import main

    raise SystemExit(main())
