"""Tools that produce evidence: OCR, detector, zoom, colour, metadata.

Dependencies point inward only: `tools` imports nothing from `assistant` or `frontends`.
"""
