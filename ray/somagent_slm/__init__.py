"""SomaAgent SLM completions as a Ray Serve application.

Deployed by the orchestrator through the Ray dashboard's Serve REST API with
``import_path: somagent_slm.app:build``; see ``ray/README.md``.
"""

__version__ = "0.1.0"
