"""The production shape (lab/deploy.py: api-server, scheduler, dag-processor, triggerer, two
Celery workers, PostgreSQL metadata, Redis broker) on a lab, driven as operators do."""
