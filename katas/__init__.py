"""What you edit: one module per kata. Generated from solutions/ by `python -m tfkata.stubs`."""
