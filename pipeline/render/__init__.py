"""Render stage: drawing sheets -> per-FIG. views (segmentation, labels, PNG views, view hashes)."""
