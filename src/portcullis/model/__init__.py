"""Typed, serialisable models shared by every part of Portcullis."""
