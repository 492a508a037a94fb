"""DuckDB over Arrow: the sandboxed SQL session and CSV conversion."""
