"""Embed stage: image and text encoders that turn release shards into vectors."""
