"""Named SQL, one module per table family (as procrastinate keeps its queries): a
statement is written once, under a name, and every caller (the sync ingest, the async
API) uses that name."""
