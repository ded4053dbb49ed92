"""The Streamlit dashboard: search by image and watch the live index.

``app`` is the thin Streamlit page; ``query``, ``live`` and ``health`` hold the logic it calls, so
that logic can be imported and tested without Streamlit.
"""
