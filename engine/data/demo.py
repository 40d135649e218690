"""Deterministic synthetic demo data: the embedded default when no upload is given.

``demo_leads(n=2000, seed=0)`` (engine/data/demo_leads.py) and ``demo_transcripts(n=400, seed=0)``
(engine/data/demo_transcripts.py). Both generators are documented in their own modules.
"""

from engine.data.demo_leads import DEMO_NOTICE, demo_leads
from engine.data.demo_transcripts import demo_transcripts

__all__ = ["DEMO_NOTICE", "demo_leads", "demo_transcripts"]
