"""The fleet service (`portcullis serve`): agents push reports over HTTP(S) with their own token, readers query the
fleet; the store underneath is the history store (PostgreSQL in production, SQLite for a trial).

It is a caller like the CLI: it uses `pipelines` and `store`, and nothing below imports it.
"""
