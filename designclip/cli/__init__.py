"""The `designclip` command line and the search server it starts (the top layer: it calls flows)."""
