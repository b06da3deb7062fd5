"""The demo: the bundled stream replayed through the real connectors (see ``stream``)."""
