"""Turn files into (title, markdown) for ingestion: Markdown, plain text, HTML and PDF."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidInput

MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_TEXT_CHARS = 2_000_000
SUFFIXES = {".md": "markdown", ".markdown": "markdown", ".txt": "text", ".text": "text",
            ".html": "html", ".htm": "html", ".pdf": "pdf"}
_H1 = re.compile(r"^#[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)


@dataclass(frozen=True)
class Extracted:
    title: str
    text: str  # markdown
    source_uri: str


def supported(path: Path) -> bool:
    return path.suffix.lower() in SUFFIXES


def discover(paths: list[Path]) -> list[Path]:
    """Files to ingest: given files as they are, folders recursively (supported types only)."""
    return scan(paths)[0]


def scan(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """(files to ingest, unsupported files skipped inside folders). Given files are taken as they are
    (an unsupported one fails on its own, by name); InvalidInput if a path is missing or nothing
    is left to ingest."""
    found: list[Path] = []
    skipped: list[Path] = []
    for p in paths:
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file())
            found += [f for f in files if supported(f)]
            skipped += [f for f in files if not supported(f)]
        elif p.is_file():
            found.append(p)
        else:
            raise InvalidInput(f"{p} does not exist")
    if not found:
        kinds = " ".join(sorted(SUFFIXES))
        extra = f" ({len(skipped)} unsupported file(s) skipped)" if skipped else ""
        raise InvalidInput(f"no files to ingest in {', '.join(str(p) for p in paths)}{extra}: supported are {kinds}")
    return found, skipped


def _decode(data: bytes, path: Path) -> str:
    if b"\x00" in data[:8192]:
        raise InvalidInput(f"{path.name} is not a text file (binary content)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(f"{path.name} is not valid UTF-8 text") from None


def _title_from_markdown(text: str, fallback: str) -> str:
    m = _H1.search(text)
    return (m.group(1).strip() if m else fallback)[:300]


def html_to_markdown(html: str) -> tuple[str, str | None]:
    from selectolax.lexbor import LexborHTMLParser as HTMLParser

    tree = HTMLParser(html)
    for node in tree.css("script, style, nav, header, footer, noscript, svg, form"):
        node.decompose()
    title_node = tree.css_first("title") or tree.css_first("h1")
    title = title_node.text(strip=True) if title_node else None
    lines: list[str] = []
    body = tree.body or tree.root
    for node in body.css("h1, h2, h3, h4, h5, h6, p, li, pre, td, th, blockquote, dt, dd"):
        text = node.text(separator=" ", strip=True)
        if not text:
            continue
        tag = node.tag
        if tag[0] == "h" and tag[1:].isdigit():
            lines.append(f"\n{'#' * int(tag[1:])} {text}\n")
        elif tag == "li":
            lines.append(f"- {text}")
        elif tag == "pre":
            lines.append(f"```\n{node.text()}\n```")
        else:
            lines.append(f"{text}\n")
    return "\n".join(lines).strip(), title


def pdf_to_text(data: bytes, path: Path) -> str:
    import io

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
    except (PdfReadError, ValueError, KeyError) as exc:
        raise InvalidInput(f"{path.name} is not a readable PDF ({exc.__class__.__name__})") from None
    text = "\n\n".join(p for p in pages if p)
    if not text.strip():
        raise InvalidInput(f"{path.name} has no text layer (a scanned PDF?): run OCR on it first")
    return text


def load_file(path: Path) -> Extracted:
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise InvalidInput(f"{path.name}: unsupported file type (use {', '.join(sorted(SUFFIXES))})")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise InvalidInput(f"{path.name} is {size // 1_000_000} MB; the limit is {MAX_FILE_BYTES // 1_000_000} MB")
    data = path.read_bytes()
    fallback = path.stem.replace("_", " ").replace("-", " ").strip() or path.name
    if kind == "pdf":
        text, title = pdf_to_text(data, path), fallback
    elif kind == "html":
        text, html_title = html_to_markdown(_decode(data, path))
        title = html_title or fallback
    else:
        text = _decode(data, path)
        title = _title_from_markdown(text, fallback) if kind == "markdown" else fallback
    if not text.strip():
        raise InvalidInput(f"{path.name} has no text")
    if len(text) > MAX_TEXT_CHARS:
        raise InvalidInput(f"{path.name} has {len(text)} characters; the limit is {MAX_TEXT_CHARS}")
    return Extracted(title=title, text=text, source_uri=path.resolve().as_uri())
