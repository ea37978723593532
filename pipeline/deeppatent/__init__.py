"""DeepPatent rebuilt from the ingested weekly archives: its listed sheets as PNGs, its lists, a training split."""
