"""The checkers, each a boot observer (emulator/guest/observer.py):

- mirror/: the range table's C against the reference model, after every operation;
- watch.py: stores into memory that is still needed;
- model.py: the placements against the reference prediction;
- handoff.py: the hand-off contract, from the kernel's side.

rangetable.py reads the wrapper's range table for all of them.
"""
