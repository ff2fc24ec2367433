"""torch modules behind the primitives (imported only when a model is built)."""
