"""Bounds on ingestion: the longest document (settings.kb_max_document_chars: the tool's input
schema and the domain, so the CLI path is bounded too) and concurrent ingests per caller."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import annotated_types
from pydantic import create_model

from .. import sdk_internals
from ..errors import InvalidInput, RateLimited


def check_document_size(title: str, text: str, max_chars: int) -> None:
    if len(text) > max_chars:
        raise InvalidInput(f"document '{title[:80]}' is {len(text):,} characters long; the limit is {max_chars:,}: "
                           "split it into several documents")


def bound_ingest_schema(server: Any, max_chars: int) -> None:
    """Make ingest_document's `text` limit the configured one, in the advertised input schema
    and in the argument model that validates calls."""
    tool = sdk_internals.registered_tool(server, "ingest_document")
    if tool is None:
        return
    model = tool.fn_metadata.arg_model
    info = model.model_fields["text"]
    tool.fn_metadata.arg_model = create_model(
        model.__name__, __base__=model, text=(Annotated[info.annotation, annotated_types.MaxLen(max_chars)], info))
    tool.parameters["properties"]["text"]["maxLength"] = max_chars


class IngestGate:
    """At most `per_caller` ingests at once per caller (API key, or operator); one more is
    refused at once rather than queued, so nothing waits holding memory or a connection."""

    def __init__(self, per_caller: int) -> None:
        self.per_caller = per_caller
        self.running: Counter[str] = Counter()

    @contextmanager
    def hold(self, caller: str | None) -> Iterator[None]:
        if caller is None:
            yield
            return
        if self.running[caller] >= self.per_caller:
            raise RateLimited("an ingest is already running for this key; retry when it finishes"
                              if self.per_caller == 1 else
                              f"{self.per_caller} ingests are already running for this key; retry when one finishes")
        self.running[caller] += 1
        try:
            yield
        finally:
            self.running[caller] -= 1
            if self.running[caller] <= 0:
                del self.running[caller]
