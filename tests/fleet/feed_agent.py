#!/usr/bin/env python3
"""Feeds recorded captured traces into an agent through the capture
package's own sender (harness/capture/comfyui/spool.py): each trace is added
to a spool folder and the sender empties the spool as a ComfyUI server with
RESIDENCY_AGENT_URL set would. Prints the names the agent acknowledged, one
JSON list on the last line.

Usage: feed_agent.py SPOOL_DIR URL TOKEN_FILE TRACE...   (exit 1 when a trace
is still spooled after 60 s)"""
import json
import logging
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "harness" / "capture"))
from comfyui.spool import Sender, Spool  # noqa: E402  (the package outside ComfyUI hooks nothing)


def main():
    spool_dir, url, token_file, *traces = sys.argv[1:]
    logging.basicConfig(level=logging.WARNING)
    spool = Spool(spool_dir)
    for t in traces:
        spool.add(t)
    sender = Sender(spool, url, token_file=token_file, timeout=10)
    deadline = time.time() + 60
    while not sender.send_pending():
        if time.time() > deadline:
            print("still spooled:", [pathlib.Path(p).name for p in spool.pending()])
            print(json.dumps(sender.delivered))
            sys.exit(1)
        time.sleep(0.5)
    print(json.dumps(sender.delivered))


if __name__ == "__main__":
    main()
