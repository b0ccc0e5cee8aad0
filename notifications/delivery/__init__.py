"""Notification delivery, above the domain: the dispatcher reads the outbox the domain
wrote and sends through the channels; the worker (arq) or the in-process runner drives it.

It may import the domain (`superior_of` for escalation); the domain never imports it."""
