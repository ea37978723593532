"""Release stage: rendered + captioned shards -> versioned, split release shards."""
