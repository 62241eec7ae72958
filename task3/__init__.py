"""Task 3 of PA5 (see task3/README.md)."""
