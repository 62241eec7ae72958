"""Task 3 of PA5 (see task3/README.md)."""
import pa5 as _pa5  # noqa: F401  - its import patches matplotlib so that overcomplete imports
