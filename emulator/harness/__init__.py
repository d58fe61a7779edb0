"""The harness: firmware builds, scenarios, the boot runner and its result,
the range-table harness behind `bwemu ranges-check`, and the QEMU peer."""
