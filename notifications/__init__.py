"""Notices, in two layers on either side of the domain.

- `notifications.outbox` (below the domain): the transactional outbox the domain writes,
  the reminder policies and working hours it reads, the commit wake-up. It imports models
  only, never the domain.
- `notifications.delivery` (above the domain): dispatcher, channels, worker, runner.
- Beside them the notice centre's read side for the GraphQL and link adapters (`inbox`,
  `reads`, `preferences`, `subscriptions`, `http`).

The modules at the old flat names (`notifications.dispatcher`, `notifications.setup`, …)
are the same modules under their earlier names.
"""
