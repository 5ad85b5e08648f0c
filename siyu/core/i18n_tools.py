"""Keep the Babel catalogs in step with the code: ``python -m siyu.core.i18n_tools [--check]``.

Extracts every marked string (``babel.cfg``) from ``siyu/`` into ``siyu/locale/messages.pot``
and merges it into each language's ``messages.po``, keeping existing translations. New strings
arrive untranslated; a string whose English changed arrives as a fuzzy guess, which is not used
until a translator confirms it. Files are rewritten only when their messages change, so a run
without changes leaves the tree clean. ``--check`` changes nothing and exits 1 when the catalogs
are stale or a zh-CN translation is missing.
"""

from __future__ import annotations

import argparse
import ast
import io
import sys
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_keywords, parse_mapping_cfg
from babel.messages.pofile import read_po, write_po

from siyu import __version__
from siyu.core.i18n import LOCALE_DIR

PACKAGE_DIR = Path(__file__).resolve().parents[1]
ROOT = PACKAGE_DIR.parent
MAPPING_FILE = ROOT / "babel.cfg"
TEMPLATE_FILE = LOCALE_DIR / "messages.pot"
CATALOG_LOCALES = ("zh_CN", "en")
# Locales whose every message must be translated (the others may fall back to the English source).
COMPLETE_LOCALES = ("zh_CN",)
KEYWORDS = parse_keywords(["_", "gettext", "ngettext:1,2", "N_"])
PO_WIDTH = 100
_VOLATILE_HEADERS = (b'"POT-Creation-Date:', b'"PO-Revision-Date:')


def extract_python(
    fileobj: IO[bytes],
    keywords: Collection[str],
    comment_tags: Collection[str],
    options: Mapping[str, Any],
) -> Iterator[tuple[int, str, tuple[str | None, ...], list[str]]]:
    """A Babel extraction method that reads Python through :mod:`ast`.

    Unlike Babel's tokenizer on Python 3.11, it also finds calls inside f-strings
    (``f"{_('Error')}: …"``), and it finds the same strings on every Python version.
    Arguments that are not string literals come back as None, which Babel skips.
    """
    source = fileobj.read().decode(options.get("encoding", "utf-8"))
    lines = source.splitlines()
    calls = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = (
            func.id
            if isinstance(func, ast.Name)
            else func.attr
            if isinstance(func, ast.Attribute)
            else None
        )
        if name in keywords:
            calls.append(node)
    for node in sorted(calls, key=lambda call: (call.lineno, call.col_offset)):
        messages = tuple(
            arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None
            for arg in node.args
        )
        name = node.func.id if isinstance(node.func, ast.Name) else node.func.attr  # type: ignore[attr-defined]
        yield node.lineno, name, messages, _translator_comments(lines, node.lineno, comment_tags)


def _translator_comments(lines: list[str], lineno: int, comment_tags: Collection[str]) -> list[str]:
    """The ``# Translators: …`` comment block right above line ``lineno``."""
    block: list[str] = []
    index = lineno - 2
    while index >= 0 and lines[index].lstrip().startswith("#"):
        block.insert(0, lines[index].lstrip()[1:].strip())
        index -= 1
    for start, text in enumerate(block):
        if any(text.startswith(tag) for tag in comment_tags):
            return block[start:]
    return []


def catalog_path(locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"


def extract(root: Path = ROOT, mapping_file: Path = MAPPING_FILE) -> Catalog:
    """Every marked string under ``root``, as a template catalog."""
    with mapping_file.open() as handle:
        method_map, options_map = parse_mapping_cfg(handle, str(mapping_file))  # type: ignore[no-untyped-call]
    template = Catalog(project="siyu", version=__version__, charset="utf-8", fuzzy=False)
    found = extract_from_dir(
        str(root),
        method_map,
        options_map,
        keywords=KEYWORDS,
        comment_tags=("Translators:",),
        strip_comment_tags=True,
    )
    for filename, lineno, message, comments, context in found:
        template.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return template


def read_catalog(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle, locale=locale)


def merged(template: Catalog, locale: str) -> Catalog:
    """The catalog for ``locale`` updated to ``template``, keeping its translations."""
    path = catalog_path(locale)
    if path.exists():
        catalog = read_catalog(path, locale)
    else:
        catalog = Catalog(
            locale=locale, project="siyu", version=__version__, charset="utf-8", fuzzy=False
        )
    catalog.update(template)
    return catalog


def render(catalog: Catalog) -> bytes:
    buffer = io.BytesIO()
    write_po(
        buffer,
        catalog,
        width=PO_WIDTH,
        ignore_obsolete=True,
        include_lineno=False,
        sort_output=True,
    )
    return buffer.getvalue()


def _stable(content: bytes) -> bytes:
    return b"\n".join(
        line for line in content.splitlines() if not line.startswith(_VOLATILE_HEADERS)
    )


def _write_if_changed(path: Path, content: bytes) -> bool:
    if path.exists() and _stable(path.read_bytes()) == _stable(content):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return True


@dataclass(frozen=True)
class Problem:
    locale: str
    msgid: str
    reason: str


def _text(message: Message) -> str:
    return message.id if isinstance(message.id, str) else " | ".join(message.id)


def untranslated(catalog: Catalog) -> Iterable[Message]:
    """Messages without a usable translation (empty, partly empty, or fuzzy)."""
    for message in catalog:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple | list) else (message.string,)
        if message.fuzzy or not all(strings):
            yield message


def problems(template: Catalog) -> list[Problem]:
    """What stops the catalogs being complete for ``template``: stale or missing translations."""
    found: list[Problem] = []
    for locale in CATALOG_LOCALES:
        path = catalog_path(locale)
        if not path.exists():
            found.append(Problem(locale, "", f"{path} is missing"))
            continue
        catalog = read_catalog(path, locale)
        for message in template:
            if message.id and catalog.get(message.id, message.context) is None:
                found.append(Problem(locale, _text(message), "not in the catalog; run make i18n"))
        if locale in COMPLETE_LOCALES:
            for message in untranslated(catalog):
                if template.get(message.id, message.context) is not None:
                    found.append(Problem(locale, _text(message), "not translated (or fuzzy)"))
    return found


def update() -> list[Path]:
    """Extract and merge; return the files written."""
    template = extract()
    written = []
    if _write_if_changed(TEMPLATE_FILE, render(template)):
        written.append(TEMPLATE_FILE)
    for locale in CATALOG_LOCALES:
        path = catalog_path(locale)
        if _write_if_changed(path, render(merged(template, locale))):
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m siyu.core.i18n_tools", description=__doc__)
    parser.add_argument(
        "--check", action="store_true", help="Change nothing; exit 1 if catalogs are incomplete."
    )
    args = parser.parse_args(argv)
    if args.check:
        found = problems(extract())
        for problem in found:
            print(f"{problem.locale}: {problem.msgid!r}: {problem.reason}", file=sys.stderr)
        return 1 if found else 0
    for path in update():
        print(f"updated {path.relative_to(ROOT)}")
    todo = [problem for problem in problems(extract()) if problem.locale in COMPLETE_LOCALES]
    for problem in todo:
        print(f"{problem.locale}: translate {problem.msgid!r}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
