"""designclip-pipeline: USPTO design patents -> captioned multi-view WebDataset -> DesignCLIP -> FAISS."""

__version__ = "0.1.0"
