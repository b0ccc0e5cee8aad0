"""FHIR Bulk Data Access `$export` (hl7.org/fhir/uv/bulkdata/export.html), asynchronous.

    GET|POST /fhir/$export            kick-off, system level: every patient the caller may see
    GET|POST /fhir/Patient/$export    kick-off, Patient level (the same set of patients)
        Prefer: respond-async (required), Accept: application/fhir+json,
        _outputFormat (application/fhir+ndjson), _type, _since
        -> 202 Accepted, Content-Location: the status URL
    GET    /fhir/bulk-status/{id}     200 with the manifest (output files, transactionTime)
    DELETE /fhir/bulk-status/{id}     202: the job and its files are gone
    GET    /fhir/bulk-files/{id}/{Type}.ndjson   application/fhir+ndjson, one resource a line

The files are written at kick-off, in the kick-off's transaction, to the database (not a
process's memory or disk), so any API process answers the status and file requests; the
status is complete by the time the client first asks. Every URL needs the kick-off's
bearer token (`requiresAccessToken`). References between the files are relative
(`Patient/12`) and resolve within the output; a reference to something not exported is
dropped. The kick-off is written to the access log (action "export").
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api.audit import record_access
from api.domain.people import require_staff
from api.errors import DomainError, ErrorCode, invalid
from api.models.fhir import FhirBulkExport, FhirBulkFile
from api.services import Services
from integrations.fhir import (
    ExportQuery,
    base_url,
    collect,
    error_response,
    instant,
    outcome,
    request_actor,
    rewrite_references,
    with_referenced,
)

NDJSON = "application/fhir+ndjson"
OUTPUT_FORMATS = ("application/fhir+ndjson", "application/ndjson", "ndjson")
KEEP = timedelta(hours=24)


def parse_since(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise invalid("_since", "_since 须为 FHIR instant / _since must be an instant") from None
    if moment.tzinfo is None:
        raise invalid("_since", "_since 须带时区 / _since needs a time zone")
    return moment.astimezone(UTC)


def routes(services: Services) -> list[Route]:
    async def kick_off(request: Request) -> Response:
        try:
            actor = await request_actor(services, request)
            # A bulk export is a system integration's work, asked for by staff.
            require_staff(actor, "仅医务人员可批量导出 / only staff may run a bulk export")
            if "respond-async" not in request.headers.get("prefer", ""):
                raise invalid(
                    "Prefer",
                    "批量导出是异步的，请带 Prefer: respond-async / $export is asynchronous:"
                    " send Prefer: respond-async",
                )
            accept = request.headers.get("accept", "application/fhir+json")
            if not any(t in accept for t in ("application/fhir+json", "*/*", "application/json")):
                raise invalid("Accept", "Accept 须为 application/fhir+json")
            params = dict(request.query_params)
            if request.method == "POST":
                body = await request.json()
                for parameter in body.get("parameter", []):
                    value = next((v for k, v in parameter.items() if k.startswith("value")), "")
                    params[parameter.get("name", "")] = str(value)
            fmt = params.get("_outputFormat", NDJSON)
            if fmt not in OUTPUT_FORMATS:
                raise invalid(
                    "_outputFormat", f"不支持的输出格式 / unsupported _outputFormat {fmt[:40]}"
                )
            types = {t.strip() for t in params.get("_type", "").split(",") if t.strip()}
            query = ExportQuery(
                patient_ids=None, start=parse_since(params.get("_since")), types=types
            )
            now = datetime.now(UTC)
            job_id = str(uuid.uuid4())
            async with services.db.transaction() as session:
                resources, patients, wanted = await collect(
                    session,
                    actor,
                    services.cipher,
                    query,
                    services.settings,
                    every_visible_patient=True,
                )
                bodies = await with_referenced(
                    session, actor, services.cipher, services.settings, resources
                )
                keep = {k: v for k, v in bodies.items() if not types or k[0] in types}
                refs = {key: f"{key[0]}/{key[1]}" for key in keep}
                by_type: dict[str, list[str]] = {}
                for (kind, _), body in keep.items():
                    line = json.dumps(
                        rewrite_references(body, refs), ensure_ascii=False, separators=(",", ":")
                    )
                    by_type.setdefault(kind, []).append(line)
                session.add(
                    FhirBulkExport(
                        id=job_id,
                        user_id=actor.user_id,
                        request_url=str(request.url)[:2000],
                        transaction_time=now,
                        created_at=now,
                        expires_at=now + KEEP,
                    )
                )
                await session.flush()
                for kind, lines in sorted(by_type.items()):
                    session.add(
                        FhirBulkFile(
                            export_id=job_id,
                            resource_type=kind,
                            count=len(lines),
                            body="\n".join(lines) + "\n",
                        )
                    )
                await record_access(
                    session,
                    actor,
                    "fhir.$export",
                    action="export",
                    detail={
                        "patient_ids": sorted(patients),
                        "since": instant(query.start),
                        "types": sorted(wanted),
                        "count": len(keep),
                        "job": job_id,
                    },
                )
        except DomainError as exc:
            return error_response(exc)
        return Response(
            status_code=202,
            headers={"Content-Location": f"{base_url(services.settings)}/bulk-status/{job_id}"},
        )

    async def job_for(request: Request) -> tuple[FhirBulkExport, list[FhirBulkFile]]:
        actor = await request_actor(services, request)
        async with services.db.session() as session:
            job = await session.get(FhirBulkExport, request.path_params["job_id"])
            if job is None or job.user_id != actor.user_id or job.expires_at < datetime.now(UTC):
                raise DomainError(ErrorCode.NOT_FOUND, "导出任务不存在 / export job not found")
            files = list(
                (
                    await session.execute(
                        sa.select(FhirBulkFile)
                        .where(FhirBulkFile.export_id == job.id)
                        .order_by(FhirBulkFile.resource_type)
                    )
                ).scalars()
            )
        return job, files

    async def status(request: Request) -> Response:
        try:
            job, files = await job_for(request)
        except DomainError as exc:
            return error_response(exc)
        base = base_url(services.settings)
        manifest = {
            "transactionTime": instant(job.transaction_time),
            "request": job.request_url,
            "requiresAccessToken": True,
            "output": [
                {
                    "type": f.resource_type,
                    "url": f"{base}/bulk-files/{job.id}/{f.resource_type}.ndjson",
                    "count": f.count,
                }
                for f in files
            ],
            "error": [],
        }
        return JSONResponse(
            manifest, headers={"Expires": job.expires_at.strftime("%a, %d %b %Y %H:%M:%S GMT")}
        )

    async def delete(request: Request) -> Response:
        try:
            job, _ = await job_for(request)
        except DomainError as exc:
            return error_response(exc)
        async with services.db.transaction() as session:
            await session.execute(sa.delete(FhirBulkFile).where(FhirBulkFile.export_id == job.id))
            await session.execute(sa.delete(FhirBulkExport).where(FhirBulkExport.id == job.id))
        return Response(status_code=202)

    async def file(request: Request) -> Response:
        try:
            job, files = await job_for(request)
        except DomainError as exc:
            return error_response(exc)
        name = request.path_params["name"].removesuffix(".ndjson")
        found = next((f for f in files if f.resource_type == name), None)
        if found is None:
            return outcome(404, "not-found", "没有此文件 / no such file")
        return Response(found.body.encode("utf-8"), media_type=NDJSON)

    return [
        Route("/fhir/$export", kick_off, methods=["GET", "POST"]),
        Route("/fhir/Patient/$export", kick_off, methods=["GET", "POST"]),
        Route("/fhir/bulk-status/{job_id}", status, methods=["GET"]),
        Route("/fhir/bulk-status/{job_id}", delete, methods=["DELETE"]),
        Route("/fhir/bulk-files/{job_id}/{name}", file, methods=["GET"]),
    ]
