"""The self-assessment from inside a container: standard library only, the whole of portcullis-inside.pyz."""
