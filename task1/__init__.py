"""Task 1 of PA5 (see task1/README.md)."""
