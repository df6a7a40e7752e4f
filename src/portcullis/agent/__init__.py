"""`portcullis agent`: audit this engine and its images on an interval and on engine events, and push each report to
the fleet service (`portcullis serve`) through a durable spool, so a lost server costs no report and duplicates none.

It is a caller like the CLI and the service: it uses `pipelines` (and `collect` for the engine's event stream), and
nothing below imports it.
"""
