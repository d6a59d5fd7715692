"""Stage 6, report: what a run found, for people (text, pages with pictures) and tools (JSON,
JUnit)."""
