"""netkit's runnable examples.

This file only makes ``examples._common``, the helpers the examples share,
importable as a package from the checkout's root, so that no other
``examples`` package installed on the machine can stand in for it.
"""
