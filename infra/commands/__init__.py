"""The parsers of the dev tools' subcommands (``bench``, ``eval``), importable without the tools.

``infra.cli`` is the production entry point: every worker and API process starts through it, so it
must not load the bench or eval code (and what they import) just to build its parser. Each module
here declares one tool's arguments and imports the tool only inside the command function, when a
user actually runs it.
"""
