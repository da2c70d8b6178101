"""Named SQL, one module per table family (as procrastinate keeps its queries)."""
