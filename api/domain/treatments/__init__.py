"""Treatment management (综合治疗管理), one module per concern; adapters (GraphQL, HL7,
sync, bots, jobs) import the module they need, e.g. `from api.domain.treatments import
appointments`.

    orders        create_order, set_payment_status, cancel_order, merge_orders, access_order,
                  order_by_his_no, remaining_sessions, bookable_sessions
    schedules     create_schedule, add_exception, generate_slots (rolling window, China
                  working calendar), available_slots
    appointments  book_appointment, cancel_appointment, reschedule_appointment, book_series,
                  register_walk_in, mark_no_shows, worklist, access_appointment
    waitlist      join_waitlist, promote_from_waitlist (called by cancel_appointment)
    queue         check_in, call_next, skip_entry, day_queue
    records       start_treatment (确费), attach_photo, sign_consent, save_treatment_record,
                  save_assessment, archive_session, publish_consent_text
    followups     create_follow_ups (from archive_session), answer_follow_up, due_follow_ups
    statistics    treatment_statistics, export_statistics (Excel, logged as an export)
    archive       patient_archive, set_allergies, ensure_patient
    attachments   check_upload, record_attachment (bytes live in api.storage)

Writes take `(session, ..., *, actor, idempotency_key=None, now=None)` and never commit.
Appointment states are FHIR R4 codes; PAD-edited rows carry `version` / `deleted_at`.
"""
