"""Structure-aware chunking: Markdown sections keep their heading path; long sections are
split to ~target tokens with a small overlap by semantic-text-splitter (which prefers
paragraph, then sentence, then word boundaries); small neighbouring sections are merged."""

from __future__ import annotations

import re
from dataclasses import dataclass

from semantic_text_splitter import MarkdownSplitter
from tokenizers import Tokenizer

_ATX = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
_FENCE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})")


@dataclass(frozen=True)
class Chunk:
    ordinal: int
    heading_path: list[str]
    text: str
    token_count: int


@dataclass
class _Section:
    path: list[str]
    lines: list[str]

    @property
    def body(self) -> str:
        return "\n".join(self.lines).strip()


def sections(markdown: str) -> list[_Section]:
    """Split at ATX headings (not inside fenced code); each section knows its heading path."""
    out = [_Section([], [])]
    stack: list[tuple[int, str]] = []
    fence: str | None = None
    for line in markdown.splitlines():
        if m := _FENCE.match(line):
            marker = m.group(1)[0] * 3
            fence = None if fence == marker else (fence or marker)
        elif fence is None and (h := _ATX.match(line)):
            level, title = len(h.group(1)), h.group(2).strip()
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, title))
            out.append(_Section([t for _, t in stack], []))
            continue
        out[-1].lines.append(line)
    return [s for s in out if s.body or s.path]


class Chunker:
    def __init__(self, tokenizer: Tokenizer, *, target_tokens: int = 250, overlap_tokens: int = 30) -> None:
        tok = Tokenizer.from_str(tokenizer.to_str())
        tok.no_truncation()
        tok.no_padding()
        self._tok = tok
        self.target = target_tokens
        self._splitter = MarkdownSplitter.from_huggingface_tokenizer(
            tok, capacity=(max(1, target_tokens * 3 // 4), target_tokens), overlap=overlap_tokens)

    def count(self, text: str) -> int:
        return len(self._tok.encode(text, add_special_tokens=False).ids)

    def chunk(self, markdown: str) -> list[Chunk]:
        pieces: list[tuple[list[str], str]] = []
        pending: tuple[list[str], list[str], int] | None = None  # path, texts, tokens
        for sec in sections(markdown):
            body = sec.body
            if not body:
                continue
            tokens = self.count(body)
            if tokens > self.target:
                if pending:
                    pieces.append((pending[0], "\n\n".join(pending[1])))
                    pending = None
                pieces += [(sec.path, part) for part in self._splitter.chunks(body)]
                continue
            if pending and pending[2] + tokens <= self.target and sec.path[:1] == pending[0][:1]:
                heading = f"{'#' * min(6, len(sec.path) + 1)} {sec.path[-1]}\n" if sec.path else ""
                pending = (pending[0], [*pending[1], heading + body], pending[2] + tokens)
            else:
                if pending:
                    pieces.append((pending[0], "\n\n".join(pending[1])))
                pending = (sec.path, [body], tokens)
        if pending:
            pieces.append((pending[0], "\n\n".join(pending[1])))
        return [Chunk(i, path, text, self.count(text)) for i, (path, text) in enumerate(pieces) if text.strip()]


def embedding_text(title: str, heading_path: list[str], text: str) -> str:
    """What gets embedded: the chunk in its context (title and headings)."""
    context = " > ".join([title, *heading_path]) if title else " > ".join(heading_path)
    return f"{context}\n\n{text}" if context else text
