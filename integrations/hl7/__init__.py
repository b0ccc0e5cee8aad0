"""HL7 v2 over MLLP: the hospital information system (HIS) talking to Bedside.

Inbound: `mllp.MLLPServer` frames bytes, `parse` decodes and parses them, `inbound`
applies each message once through the domain services (one transaction, the message
control id as idempotency key) and `ack` answers. Outbound: `outbound` turns our
appointments into SIU messages kept in a table until the HIS acknowledges them.
"""
