"""HTML and Markdown comparison reports built from a results directory."""
