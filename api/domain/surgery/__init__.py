"""Surgery approval: the application, its pre-check (智能预审), the policy the approval
engine checks at each decision, and the approval notice.

The assembly registers the surgery hooks with the approval engine
(`api.assembly.install_domain` calls `hooks.register_hooks`).
"""

from api.domain.surgery.applications import (
    access_application,
    application_document,
    application_for_instance,
    precheck_surgery_application,
    resolve_surgeon,
    resubmit_surgery_application,
    submit_surgery_application,
)
from api.domain.surgery.precheck import SurgeryRequest

__all__ = [
    "SurgeryRequest",
    "access_application",
    "application_document",
    "application_for_instance",
    "precheck_surgery_application",
    "resolve_surgeon",
    "resubmit_surgery_application",
    "submit_surgery_application",
]
