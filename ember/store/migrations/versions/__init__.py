"""Alembic revisions, numbered ``NNNN_<what>.py``; Alembic skips this file."""
