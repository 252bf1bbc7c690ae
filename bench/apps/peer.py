"""The peer a user would pick instead (seed articles 001 and 004), plainly: FastAPI under
uvicorn, the same signature check on the raw body, then `await send_and_wait()` on one
aiokafka producer per worker with `acks=all`, answering once Kafka holds the event.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaProducer
from fastapi import FastAPI, Header, HTTPException, Request

from bench.apps.signature import PATH, secret_key, valid
from hookstream.settings import Settings

settings = Settings.from_env()
KEY = secret_key(settings)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    await producer.start()
    app.state.producer = producer
    try:
        yield
    finally:
        await producer.stop()


app = FastAPI(lifespan=lifespan)


@app.post(PATH)
async def webhook(request: Request, x_fastio_signature: str = Header("")) -> dict[str, str]:
    body = await request.body()
    if not valid(body, x_fastio_signature, KEY):
        raise HTTPException(status_code=401, detail="Invalid signature")
    event = json.loads(body)
    if not event.get("event_id") or not event.get("workspace_id"):
        raise HTTPException(status_code=400, detail="event_id and workspace_id are required")
    await request.app.state.producer.send_and_wait(
        settings.topic, value=body, key=event["workspace_id"].encode()
    )
    return {"status": "accepted"}
