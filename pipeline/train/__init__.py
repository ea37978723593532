"""Train stage: DesignCLIP training on a release (data, model, loop, export)."""
