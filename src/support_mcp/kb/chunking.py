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
    """Chunks that fit the model: with ``max_tokens`` (the model's input limit, [CLS]/[SEP]
    included) each chunk's budget is ``target_tokens`` less whatever its title/heading prefix takes,
    so what gets embedded (:meth:`embedding_input`) is never truncated by the model."""

    def __init__(self, tokenizer: Tokenizer, *, target_tokens: int = 250, overlap_tokens: int = 30,
                 max_tokens: int | None = None) -> None:
        tok = Tokenizer.from_str(tokenizer.to_str())
        tok.no_truncation()
        tok.no_padding()
        self._tok = tok
        self.target = target_tokens if max_tokens is None else min(target_tokens, max_tokens - 2)
        self.overlap = overlap_tokens
        self.max_tokens = max_tokens
        self._splitters: dict[int, MarkdownSplitter] = {}

    def _splitter(self, capacity: int) -> MarkdownSplitter:
        if capacity not in self._splitters:
            self._splitters[capacity] = MarkdownSplitter.from_huggingface_tokenizer(
                self._tok, capacity=(max(1, capacity * 3 // 4), capacity), overlap=min(self.overlap, capacity // 2))
        return self._splitters[capacity]

    def count(self, text: str) -> int:
        return len(self._tok.encode(text, add_special_tokens=False).ids)

    def context(self, title: str, heading_path: list[str]) -> str:
        """The title > heading prefix, cut to a quarter of the model's window at most."""
        ctx = " > ".join([title, *heading_path]) if title else " > ".join(heading_path)
        if self.max_tokens is None or not ctx:
            return ctx
        cap = max(1, self.max_tokens // 4)
        enc = self._tok.encode(ctx, add_special_tokens=False)
        return ctx if len(enc.ids) <= cap else ctx[:enc.offsets[cap - 1][1]].rstrip()

    def budget(self, title: str, heading_path: list[str]) -> int:
        """Tokens of chunk text that fit beside the prefix (the prefix and the text add up: BERT
        word pieces never span the blank line between them)."""
        if self.max_tokens is None:
            return self.target
        return max(16, min(self.target, self.max_tokens - 2 - self.count(self.context(title, heading_path))))

    def embedding_input(self, title: str, heading_path: list[str], text: str) -> str:
        """What gets embedded: the chunk in its (capped) context."""
        ctx = self.context(title, heading_path)
        return f"{ctx}\n\n{text}" if ctx else text

    def chunk(self, markdown: str, title: str = "") -> list[Chunk]:
        pieces: list[tuple[list[str], str]] = []
        pending: tuple[list[str], list[str], int, int] | None = None  # path, texts, tokens, budget
        for sec in sections(markdown):
            body = sec.body
            if not body:
                continue
            tokens, budget = self.count(body), self.budget(title, sec.path)
            if tokens > budget:
                if pending:
                    pieces.append((pending[0], "\n\n".join(pending[1])))
                    pending = None
                pieces += [(sec.path, part) for part in self._splitter(budget).chunks(body)]
                continue
            heading = f"{'#' * min(6, len(sec.path) + 1)} {sec.path[-1]}\n" if sec.path else ""
            if pending and sec.path[:1] == pending[0][:1] and \
                    pending[2] + (more := self.count(heading + body)) <= pending[3]:
                pending = (pending[0], [*pending[1], heading + body], pending[2] + more, pending[3])
            else:
                if pending:
                    pieces.append((pending[0], "\n\n".join(pending[1])))
                pending = (sec.path, [body], tokens, budget)
        if pending:
            pieces.append((pending[0], "\n\n".join(pending[1])))
        return [Chunk(i, path, text, self.count(text)) for i, (path, text) in enumerate(pieces) if text.strip()]


def embedding_text(title: str, heading_path: list[str], text: str) -> str:
    """What gets embedded: the chunk in its context (title and headings), uncapped."""
    context = " > ".join([title, *heading_path]) if title else " > ".join(heading_path)
    return f"{context}\n\n{text}" if context else text
