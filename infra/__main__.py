"""``python -m infra ARGS``: the same as the ``lookalike`` command."""

from infra.cli import main

raise SystemExit(main())
