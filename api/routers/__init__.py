"""Routers by resource; :data:`api.app.V1_ROUTERS` lists those mounted under ``/v1``."""
