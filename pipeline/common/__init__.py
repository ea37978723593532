"""Ground floor of the stages: what several stages share (class titles, splits, plots, contact sheets)."""
