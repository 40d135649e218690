"""Deterministic synthetic demo data: the embedded default when no upload is given.

``demo_leads(n=2000, seed=0)`` (engine/data/demo_leads.py) and ``demo_transcripts(n=400, seed=0)``
(engine/data/demo_transcripts.py). Both generators are documented in their own modules.
"""
from engine.data.demo_leads import DEMO_NOTICE, demo_leads

__all__ = ["DEMO_NOTICE", "demo_leads"]

try:
    from engine.data.demo_transcripts import demo_transcripts
except ImportError:  # engine/data/demo_transcripts.py is written by the TRANSCRIPTS teammate
    pass
else:
    __all__.append("demo_transcripts")
