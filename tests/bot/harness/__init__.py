"""Reusable pieces for tests (and benchmarks) that need a real meeting.

- ``netns``: a throwaway network namespace with 127.0.0.2 on a veth pair, and how the test thread
  enters it (``NetworkNamespace``);
- ``janus_server``: Debian's Janus in that namespace with VideoRoom + TextRoom (``JanusServer``);
- ``clips``: JAFFE faces made into VP8/H.264 packet clips and Y4M camera files at test time;
- ``participants``: aiortc students publishing a clip, chat members (``JanusParticipant``);
- ``chromium``: a headless Chromium student and the page it runs (``ChromiumStudent``);
- ``observer``: records a connector's events and frame sources as the bot session would;
- ``ws_proxy``: a relay in front of Janus that injects garbage or goes silent (``JanusRelay``).
"""
