"""Intake: the SMTP listener, the durable spool, the pipeline and the outbound mail queue."""
