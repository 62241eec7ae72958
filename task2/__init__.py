"""Task 2 of PA5 (see task2/README.md)."""
