"""Turn documents of records and frames into terminal tables, CSV, JSON, Markdown."""
