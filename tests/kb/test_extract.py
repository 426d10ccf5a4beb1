"""File extraction and chunking: supported types, bad files, heading paths."""

from __future__ import annotations

from pathlib import Path

import pytest
from tokenizers import Tokenizer

from support_mcp.errors import InvalidInput
from support_mcp.kb.chunking import Chunker, sections
from support_mcp.kb.embedding import TOKENIZER_DIR
from support_mcp.kb.extract import discover, load_file


def test_markdown_text_html(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# Install the Hub\n\nPlug it in.\n")
    (tmp_path / "notes_file.txt").write_text("Plain words.")
    (tmp_path / "p.html").write_text("<html><head><title>Lock setup</title><script>x()</script></head><body>"
                                     "<nav>menu</nav><h1>Lock</h1><p>Hold the button.</p><ul><li>Step one</li></ul>"
                                     "<h2>Battery</h2><p>Use AA cells.</p></body></html>")
    md, txt, html = (load_file(tmp_path / n) for n in ("a.md", "notes_file.txt", "p.html"))
    assert md.title == "Install the Hub" and md.source_uri.startswith("file://")
    assert txt.title == "notes file" and txt.text == "Plain words."
    assert html.title == "Lock setup" and "# Lock" in html.text and "## Battery" in html.text
    assert "- Step one" in html.text and "x()" not in html.text and "menu" not in html.text
    assert [p.name for p in discover([tmp_path])] == ["a.md", "notes_file.txt", "p.html"]


def test_pdf_with_and_without_text(tmp_path: Path) -> None:
    from pypdf import PdfWriter

    blank = tmp_path / "scan.pdf"
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    with blank.open("wb") as fh:
        writer.write(fh)
    with pytest.raises(InvalidInput, match="no text layer"):
        load_file(blank)
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    with pytest.raises(InvalidInput, match="not a readable PDF|no text layer"):
        load_file(tmp_path / "broken.pdf")


@pytest.mark.parametrize(("name", "data", "expect"), [
    ("image.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00", "not a text file"),
    ("latin.txt", "caf\xe9".encode("latin-1"), "not valid UTF-8"),
    ("slides.pptx", b"PK\x03\x04", "unsupported file type"),
    ("empty.md", b"   \n", "has no text"),
])
def test_bad_files_are_refused(tmp_path: Path, name: str, data: bytes, expect: str) -> None:
    (tmp_path / name).write_bytes(data)
    with pytest.raises(InvalidInput, match=expect):
        load_file(tmp_path / name)


def test_missing_path() -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        discover([Path("/nonexistent/nowhere.md")])


def test_sections_and_chunks_keep_heading_paths() -> None:
    md = ("intro line\n# Guide\nwelcome\n## Setup\nstep 1\n```\n# not a heading\n```\n### Wi-Fi\njoin it\n"
          "## Billing\npay\n")
    paths = [s.path for s in sections(md)]
    assert paths == [[], ["Guide"], ["Guide", "Setup"], ["Guide", "Setup", "Wi-Fi"], ["Guide", "Billing"]]
    chunker = Chunker(Tokenizer.from_file(str(TOKENIZER_DIR / "tokenizer.json")), target_tokens=60, overlap_tokens=5)
    long_md = "# Manual\n\n## Troubleshooting\n\n" + "\n\n".join(
        f"Paragraph {i} explains how the hub reconnects after a power cut and what the LED colours mean."
        for i in range(20))
    chunks = chunker.chunk(long_md)
    assert len(chunks) > 3 and all(c.token_count <= 60 for c in chunks)
    assert all(c.heading_path == ["Manual", "Troubleshooting"] for c in chunks)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    small = chunker.chunk("# A\n\n## B\nshort\n\n## C\nalso short\n")
    assert len(small) == 1 and "## C" in small[0].text  # small sibling sections are merged
