"""The Linux *test guest*: a Debian kernel + busybox initramfs for testing smartos-lab's
QEMU, console, SSH and crash handling for real.  A test substrate, not SmartOS.

Use :func:`tests.guest.build.ensure_test_guest`; :mod:`tests.guest.machines` boots it
under :class:`smartos_lab.machine.qemu.QemuMachine` and logs in.
"""
