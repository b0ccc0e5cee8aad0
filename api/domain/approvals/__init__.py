"""The approval engine: versioned process definitions, instances, tasks and actions.

Other areas use this package's names only (not its modules' internals):

    from api.domain import approvals
    await approvals.publish_definitions(session)
    instance = await approvals.start_instance(session, definition_key="surgery", applicant=user,
                                              data={...}, actor=actor)
    task = await approvals.access_task_for_decision(session, actor, task_id)
    await approvals.decide_task(session, task, actor=actor, decision="approve")
    approvals.register_decision_guard("surgery", guard)
    approvals.register_completion_hook("surgery", hook)
"""

from api.domain.approvals.access import (
    PATIENT_KEY,
    access_instance,
    access_task,
    access_task_for_decision,
    access_task_for_urging,
    can_see_instance,
    record_instance_reads,
)
from api.domain.approvals.actions import (
    add_signer,
    carbon_copy,
    check_comment,
    decide_task,
    may_decide,
    may_resubmit,
    may_withdraw,
    resubmit_instance,
    return_targets,
    start_instance,
    transfer_task,
    urge_instance,
    urge_task,
    withdraw_instance,
)
from api.domain.approvals.definition import APPLICANT, Definition, parse_definition
from api.domain.approvals.design import Trial, publish_process_definition, trial_run
from api.domain.approvals.escalation import escalate_overdue
from api.domain.approvals.flow import closed_error
from api.domain.approvals.forms import Answer, Form, FormField, check_form, describe_answers
from api.domain.approvals.history import history_verified, instance_history, stream_for
from api.domain.approvals.policy import (
    Finding,
    register_closing_hook,
    register_completion_hook,
    register_decision_guard,
    unregister,
)
from api.domain.approvals.processes import (
    Published,
    department_choices,
    published_process,
    published_processes,
    start_process,
)
from api.domain.approvals.queries import instance_tasks, my_applications, my_tasks, pending_tasks
from api.domain.approvals.registry import (
    definition_by_id,
    latest_definition,
    load_source,
    parse_stored,
    publish_definition,
    publish_definitions,
)

__all__ = [
    "APPLICANT",
    "Answer",
    "PATIENT_KEY",
    "Definition",
    "Finding",
    "Form",
    "FormField",
    "Published",
    "Trial",
    "access_instance",
    "access_task",
    "access_task_for_decision",
    "access_task_for_urging",
    "add_signer",
    "can_see_instance",
    "carbon_copy",
    "check_comment",
    "check_form",
    "closed_error",
    "decide_task",
    "definition_by_id",
    "describe_answers",
    "department_choices",
    "escalate_overdue",
    "history_verified",
    "instance_history",
    "instance_tasks",
    "latest_definition",
    "load_source",
    "may_decide",
    "may_resubmit",
    "may_withdraw",
    "my_applications",
    "my_tasks",
    "parse_definition",
    "parse_stored",
    "pending_tasks",
    "publish_definition",
    "publish_definitions",
    "publish_process_definition",
    "published_process",
    "published_processes",
    "record_instance_reads",
    "register_closing_hook",
    "register_completion_hook",
    "register_decision_guard",
    "resubmit_instance",
    "return_targets",
    "start_instance",
    "start_process",
    "stream_for",
    "transfer_task",
    "trial_run",
    "unregister",
    "urge_instance",
    "urge_task",
    "withdraw_instance",
]
