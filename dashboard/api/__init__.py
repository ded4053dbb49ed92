"""``lookalike api``: the HTTP/JSON query service beside the Streamlit dashboard (FastAPI on uvicorn).

It reads the same index and bucket as the dashboard and imports only the core (``lookalike``) and
``dashboard``: ``service`` holds the logic, ``routes`` and ``app`` the HTTP, ``cli`` the command.
"""
