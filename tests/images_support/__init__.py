"""Test helpers for smartos_lab.images: a fault-injecting HTTP server and builders for
test files shaped like SmartOS images (GPT + FAT disks, platform tarballs).  The
files they make are test files with SmartOS's *layout*, not SmartOS."""
