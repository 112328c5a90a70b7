"""Analysis of sweep results: bootstrap intervals and paired tests (``stats``), sweep summaries,
tables and the paper-style figure (``sweep``); used by ``make bench-paper`` and ``src.report --sweep``."""
