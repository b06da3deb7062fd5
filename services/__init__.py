"""The pipeline's services: ingest, nlp, alerts and search, one package each."""
