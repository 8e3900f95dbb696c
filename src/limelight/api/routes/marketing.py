"""Marketing endpoints: in-app inbox, tracking links, campaigns and their reports.

Tracking links (``/t/click``, ``/t/open``, ``/t/unsubscribe``) are opened from mail clients,
which cannot send API keys, so they are open; they only record an event for a message id that
exists in the delivery log, and that event carries the message's campaign id for attribution.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from limelight.api.deps import AdminKey, JSONResponse, ReadKey, State, WriteKey, error

router = APIRouter(tags=["marketing"])

_PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def _delivery(store: Any, message_id: str) -> dict[str, Any] | None:
    from limelight.marketing.tables import ensure_tables

    ensure_tables(store)
    frame = store.sql("SELECT message_id, campaign_id, user_id, channel FROM "
                      "marketing_deliveries WHERE message_id = ?", [message_id])
    return None if frame.empty else frame.iloc[0].to_dict()


async def _track(state: Any, message_id: str, type_: str, item_id: str | None = None
                 ) -> dict[str, Any] | None:
    row = await run_in_threadpool(_delivery, state.store, message_id)
    if row is None:
        return None
    event = {"user_id": row["user_id"], "item_id": item_id, "type": type_,
             "timestamp": datetime.now(UTC).isoformat(), "channel": row["channel"],
             "campaign_id": row["campaign_id"], "message_id": message_id}
    await run_in_threadpool(state.ingest, [event], "tracking")
    return row


@router.get("/users/{user_id}/messages", dependencies=[ReadKey],
            summary="In-app messages for a user")
async def user_messages(state: State, user_id: str, unread_only: bool = False,
                        limit: int = Query(50, ge=1, le=500)) -> Any:
    """Newest first; the app shows them and calls ``POST .../read`` when one is opened.
    Example: ``curl 127.0.0.1:8000/users/u42/messages?unread_only=true``"""
    from limelight.marketing.channels.inapp import inbox

    messages = await run_in_threadpool(inbox, state.store, user_id, unread_only=unread_only,
                                       limit=limit)
    return JSONResponse({"user_id": user_id, "messages": messages})


@router.post("/users/{user_id}/messages/{message_id}/read", dependencies=[WriteKey],
             summary="Mark an in-app message read (counts as an open)")
async def read_message(state: State, user_id: str, message_id: str) -> Any:
    from limelight.marketing.channels.inapp import mark_read

    if not await run_in_threadpool(mark_read, state.store, user_id, message_id):
        return error(404, "unknown_message", f"user {user_id} has no message {message_id}")
    await _track(state, message_id, "email_open")
    return JSONResponse({"message_id": message_id, "read": True})


@router.get("/t/click", summary="Tracked link: records email_click, then answers")
async def track_click(state: State, m: str, i: str | None = None,
                      to: str | None = None) -> Any:
    """With ``to`` (a path on this site, e.g. ``/shop/items/i7``) the answer is a redirect
    there; other targets are refused, so the link cannot become an open redirect."""
    if to is not None and (not to.startswith("/") or to.startswith("//") or "\\" in to):
        return error(422, "bad_redirect", "`to` must be a path on this site, e.g. /items/i7")
    row = await _track(state, m, "email_click", i)
    if row is None:
        return error(404, "unknown_message", f"no message {m}")
    if to is not None:
        return RedirectResponse(to, status_code=302)
    return JSONResponse({"recorded": "email_click", "campaign_id": row["campaign_id"],
                         "item_id": i})


@router.get("/t/open", summary="Open pixel: records email_open")
async def track_open(state: State, m: str) -> Any:
    await _track(state, m, "email_open")
    # A pixel always answers with an image, known message or not.
    return Response(_PIXEL, media_type="image/gif",
                    headers={"Cache-Control": "no-store"})


@router.get("/t/unsubscribe", summary="Unsubscribe link: records unsubscribe for the channel")
async def track_unsubscribe(state: State, m: str) -> Any:
    row = await _track(state, m, "unsubscribe")
    if row is None:
        return HTMLResponse("<p>This link is not valid.</p>", status_code=404)
    return HTMLResponse(f"<p>You will get no more {row['channel']} messages from us.</p>")


@router.get("/campaigns", dependencies=[ReadKey], summary="Campaigns and their status")
async def list_campaigns(state: State) -> Any:
    from limelight.marketing.campaigns import CampaignManager

    return JSONResponse({"campaigns": await run_in_threadpool(
        lambda: CampaignManager(state.store).list())}, )


@router.post("/campaigns", dependencies=[AdminKey], status_code=201,
             summary="Create a draft campaign from a JSON spec")
async def create_campaign(request: Request, state: State) -> Any:
    """Body: a campaign spec, e.g. ``{"name": "spring", "audience": {"rule": {"segment":
    "At risk"}}, "channel": "email", "offer": {"offer_id": "s20", "kind": "percent",
    "value": 20}}``."""
    from limelight.errors import LimelightError
    from limelight.marketing.campaigns import CampaignManager

    try:
        spec = await request.json()
    except ValueError as exc:
        return error(400, "malformed_json", str(exc))
    if not isinstance(spec, dict):
        return error(422, "invalid_body", "send a JSON object")
    try:
        cid = await run_in_threadpool(lambda: CampaignManager(state.store).create(spec))
    except (LimelightError, TypeError, ValueError) as exc:
        return error(422, "invalid_campaign", str(exc))
    return JSONResponse({"campaign_id": cid, "status": "draft"}, status_code=201)


@router.get("/campaigns/{campaign_id}/report", dependencies=[ReadKey],
            summary="Funnel, attributed revenue and uplift vs holdout")
async def campaign_report_route(state: State, campaign_id: str) -> Any:
    from limelight.marketing.campaigns import CampaignError
    from limelight.marketing.reports import campaign_report

    try:
        report = await run_in_threadpool(campaign_report, state.store, campaign_id)
    except CampaignError as exc:
        return error(404, "unknown_campaign", str(exc))
    return JSONResponse(report.to_dict())


def _serving(state: Any) -> Any:
    """The app's serving experiments (one registry per app: it buffers exposures and keeps
    the running experiments in memory for request-time bucketing)."""
    if state.experiments is None:
        from limelight.api.experiments import ServingExperiments

        state.experiments = ServingExperiments(state)
    return state.experiments


def _registry(request: Request, state: Any) -> Any:
    return _serving(state).registry


@router.post("/experiments", dependencies=[AdminKey], status_code=201,
             summary="Start an experiment (e.g. two rankers) bucketed at request time")
async def create_experiment(request: Request, state: State) -> Any:
    """Body: ``{"name": "ranker", "variants": {"als": 1, "ease": 1}, "holdout": 0,
    "params": {"als": {"model": "als"}, "ease": {"model": "ease"}}}``."""
    from limelight.marketing.experiments import Experiment
    from limelight.marketing.registry import ExperimentError

    try:
        body = await request.json()
    except ValueError as exc:
        return error(400, "malformed_json", str(exc))
    if not isinstance(body, dict) or "name" not in body or "variants" not in body:
        return error(422, "invalid_experiment", "send name and variants")
    try:
        experiment = Experiment(str(body["name"]), dict(body["variants"]),
                                control=body.get("control"),
                                holdout=float(body.get("holdout", 0.0)), salt=body.get("salt"))
        await run_in_threadpool(_serving(state).create, experiment, body.get("params"),
                                str(body.get("kind", "serving")))
    except (ExperimentError, TypeError, ValueError) as exc:
        return error(422, "invalid_experiment", str(exc))
    return JSONResponse({"name": experiment.name, "status": "running"}, status_code=201)


@router.post("/experiments/{name}/stop", dependencies=[AdminKey],
             summary="Stop an experiment: users get the default serving again")
async def stop_experiment(state: State, name: str) -> Any:
    from limelight.marketing.registry import ExperimentError

    try:
        await run_in_threadpool(_serving(state).stop_experiment, name)
    except ExperimentError as exc:
        return error(404, "unknown_experiment", str(exc))
    return JSONResponse({"name": name, "status": "stopped"})


@router.get("/experiments/{name}/assignment", dependencies=[ReadKey],
            summary="A user's variant (and its parameters); logs the exposure")
async def experiment_assignment(request: Request, state: State, name: str,
                                user_id: str) -> Any:
    """Example: ``curl '127.0.0.1:8000/experiments/ranker/assignment?user_id=u42'``"""
    from limelight.marketing.registry import ExperimentError

    registry = _registry(request, state)
    try:
        variant, params = await run_in_threadpool(registry.assign, name, user_id)
    except ExperimentError as exc:
        return error(404, "unknown_experiment", str(exc))
    return JSONResponse({"experiment": name, "user_id": user_id, "variant": variant,
                         "params": params})


@router.get("/experiments/{name}/report", dependencies=[ReadKey],
            summary="Variants compared on clicks, conversion and revenue after exposure")
async def experiment_report(request: Request, state: State, name: str,
                            window_days: float = Query(7.0, gt=0, le=365)) -> Any:
    from limelight.marketing.registry import ExperimentError, analyze_exposures

    _registry(request, state).flush()
    try:
        report = await run_in_threadpool(analyze_exposures, state.store, name,
                                         window_days=window_days)
    except ExperimentError as exc:
        return error(404, "unknown_experiment", str(exc))
    return JSONResponse(report.to_dict())


@router.post("/campaigns/{campaign_id}/launch", dependencies=[AdminKey],
             summary="Send a campaign now (channels configured from settings)")
async def launch_campaign(state: State, campaign_id: str) -> Any:
    from limelight.errors import LimelightError
    from limelight.marketing.campaigns import CampaignError, CampaignManager

    try:
        report = await run_in_threadpool(lambda: CampaignManager(state.store).launch(
            campaign_id))
    except CampaignError as exc:
        status = 404 if "no campaign" in str(exc) else 409
        return error(status, "campaign_error", str(exc))
    except LimelightError as exc:
        return error(422, "campaign_error", str(exc))
    return JSONResponse(report.to_dict())
