"""Pure stage code (no Prefect): each module one stage or one piece of a stage, with a typed contract."""
