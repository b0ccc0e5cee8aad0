"""Treatment management: orders and courses, schedules and slots, appointments, the
queue, bedside records, follow-ups and statistics. One module per concern; adapters
(GraphQL, HL7, sync, bots) import the module they need, e.g.
`from api.domain.treatments import appointments`.
"""
