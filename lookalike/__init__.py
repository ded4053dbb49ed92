"""lookalike core: the pieces every stage shares (settings, events, store, index, embedder)."""

import os

__version__ = "0.1.0"

# pymilvus calls python-dotenv's load_dotenv() when imported; with the virtual environment inside the
# checkout it finds the checkout's .env (infra/demo.sh writes one) and copies it into os.environ,
# behind the back of Settings, which reads .env itself (from the working directory), and of every
# test that builds its settings explicitly. Turn that side effect off unless someone asked for it.
os.environ.setdefault("PYTHON_DOTENV_DISABLED", "1")
