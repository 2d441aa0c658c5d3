"""``python -m tfkata`` is the ``kata`` command (for a checkout where the console script is not on PATH)."""
from tfkata.cli import main

main()
