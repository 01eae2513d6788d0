"""A terminal client for netkit's chat server: ``python -m netkit chat-client``.

    python examples/chat_client.py --nick ann
    printf 'hello\\n/who\\n' | python examples/chat_client.py --nick bob

The client comes with netkit (netkit/chat/client.py), so that it is there
after a ``pip install`` as ``python -m netkit chat-client``; this file runs
the same program from a checkout.  Read that module to see how it works:
stdin is read on a thread and handed to the loop, what the user types is
paced to the server's rate limit, and every way a session can end has its
own exit status.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's root: its netkit, and examples/_common.py
from netkit.__main__ import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["chat-client", *sys.argv[1:]]))
