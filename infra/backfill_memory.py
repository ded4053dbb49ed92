"""``python -m infra.backfill_memory``, kept because issues and notes name it: runs ``infra.bench.backfill_memory``."""

if __name__ == "__main__":
    from infra.bench.backfill_memory import main

    raise SystemExit(main())
