"""The store: everything edgeslm keeps on disk under EDGESLM_HOME (models, catalog additions)."""
