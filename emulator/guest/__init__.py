"""The guest layer: the Unicorn machine, its devices, the images it runs
(ELF, DWARF, link <-> guest addresses), calls into guest C, and what an
observer of a boot sees (observer.py)."""
