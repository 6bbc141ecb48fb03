"""`python -m interop.bench`: ComLog side by side with Tansu (see interop/bench/side_by_side.py)."""

from interop.bench.side_by_side import main

main()
