"""Multilingual text that Debian packages carry, beyond the fortunes, for language ID.

Three sources, each a list of distinct texts per language code:

- gettext message catalogues (``/usr/share/locale/<locale>/LC_MESSAGES/*.mo`` of the installed
  packages): every translated message, with format directives, accelerators and markup
  removed; English is the catalogues' own source strings (the msgids). Untranslated messages
  (msgstr equal to msgid) are dropped, since they are English under another label.
- translated manual pages (the ``manpages-<lang>`` packages; English: ``manpages`` and
  ``manpages-dev``): the prose paragraphs of each roff page, with font escapes and macros
  removed, option tags and example (no-fill) blocks dropped, and, in a translation, no
  paragraph that reads as English (left untranslated). Technical prose that quotes commands
  and options, as other documentation does.
- the Debian reference manual's translations (``debian-reference-<lang>`` packages, their
  plain-text rendering ``/usr/share/debian-reference/debian-reference.<lang>.txt.gz``): prose
  paragraphs only (no tables, shell sessions, tables of contents), and, in a translation, no
  paragraph that is word for word in the English original or reads as English (left
  untranslated).
"""

from __future__ import annotations

import gettext
import gzip
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

LOCALE_DIR = Path("/usr/share/locale")
REFERENCE_DIR = Path("/usr/share/debian-reference")
# language code: gettext locales (English: the msgids of every catalogue below)
GETTEXT_LOCALES = {
    "bg": ["bg"],
    "cs": ["cs"],
    "de": ["de"],
    "en": [],
    "eo": ["eo"],
    "es": ["es"],
    "ga": ["ga"],
    "it": ["it"],
    "pl": ["pl"],
    "pt": ["pt", "pt_BR"],
    "ru": ["ru"],
    "zh": ["zh_CN", "zh_TW"],
}
# language code: debian-reference translations (the manual has no bg, cs, eo, ga, pl, ru)
REFERENCE_LANGUAGES = {
    "de": ["de"],
    "en": ["en"],
    "es": ["es"],
    "it": ["it"],
    "pt": ["pt", "pt-br"],
    "zh": ["zh-cn"],
}
# language code: Debian packages of manual pages (none carries bg, eo or ga)
MANPAGE_PACKAGES = {
    "cs": ["manpages-cs"],
    "de": ["manpages-de"],
    "en": ["manpages", "manpages-dev"],
    "es": ["manpages-es"],
    "it": ["manpages-it"],
    "pl": ["manpages-pl"],
    "pt": ["manpages-pt-br"],
    "ru": ["manpages-ru"],
    "zh": ["manpages-zh"],
}
MIN_CHARS, MIN_LETTER_SHARE = 20, 0.6
WHITESPACE = re.compile(r"\s+")
FORMAT_DIRECTIVES = re.compile(
    r"%(\d+\$)?[-+ #0']*(\*|\d+)?(\.(\*|\d+))?(hh|h|ll|l|L|q|j|z|t|I64)?[diouxXeEfFgGcspSn%]"
    r"|%\([^)]*\)[a-z]|%[A-Za-z]\b|\$\{?\w+\}?|\{[^{}]*\}"
)
MARKUP = re.compile(r"<[^>]{0,80}>|&\w+;")
LIST_MARKER = re.compile(r"^(\*|\d+\.) ")
NUMBERED = re.compile(r"^(\S+ ?)?\d+(\.\d+)*\.? ")  # "4.2. Heading", "Table 9.20. List"
CJK_LINE_BREAK = re.compile(
    r"(?<=[\u3000-\u9fff\uff00-\uffef])\n\s*(?=[\u3000-\u9fff\uff00-\uffef])"
)
ENGLISH_WORDS = re.compile(r"\b(the|and|of|to|is|are|you|your|with|for|this|that|can|be|by)\b")
ACCELERATORS = re.compile(r"\(_?&?\w\)|[_&](?=\w)")
# A help line's leading option synopsis: "-d, --default-domain=NAME ", "-P PASSWORD ",
# "--backup[=CONTROL] ". It is command syntax, the same in every language; the prose after it
# is what the message's language shows in (a snippet of the synopsis alone is noise: on
# the gettext snippets starting with an option, a 1 x 64 n-gram model erred on 36 %; 3.5 %
# on snippets without one).
LEADING_OPTIONS = re.compile(
    r"^(?:-{1,2}[A-Za-z0-9?#][\w.-]*(?:\[?=[^\s\]]*\]?|\s+[A-Z][A-Z_0-9]*\b|\s+<[^>]*>)?[,|]?\s*)+"
)


def clean_message(text: str) -> str:
    """A catalogue message as prose: no format directives, markup, accelerators, line breaks
    or leading option synopsis."""
    text = FORMAT_DIRECTIVES.sub(" ", MARKUP.sub(" ", text))
    return without_option_synopsis(WHITESPACE.sub(" ", ACCELERATORS.sub("", text)).strip())


def without_option_synopsis(text: str) -> str:
    """The text after a leading option synopsis (see LEADING_OPTIONS)."""
    return LEADING_OPTIONS.sub("", text)


def is_prose(text: str) -> bool:
    """Long enough, and mostly letters (not a path, an option list or a number format)."""
    visible = [c for c in text if not c.isspace()]
    letters = sum(c.isalpha() for c in visible)
    return len(text) >= MIN_CHARS and letters >= MIN_LETTER_SHARE * max(1, len(visible))


def catalogue_pairs(locale: str) -> Iterator[tuple[str, str]]:
    """(msgid, msgstr) of every translated message in the locale's installed catalogues."""
    for path in sorted((LOCALE_DIR / locale / "LC_MESSAGES").glob("*.mo")):
        try:
            with path.open("rb") as handle:
                catalogue = gettext.GNUTranslations(handle)
        except (OSError, UnicodeDecodeError, ValueError):
            continue  # a catalogue in a legacy charset or a damaged file: not needed
        for key, value in catalogue._catalog.items():
            msgid = key[0] if isinstance(key, tuple) else key  # plural forms: (msgid, n)
            if msgid and value and value != msgid:
                yield msgid, value


def gettext_messages(language: str) -> list[str]:
    """Distinct cleaned messages of one language (English: the source strings)."""
    if language == "en":
        locales = [loc for locs in GETTEXT_LOCALES.values() for loc in locs]
        texts = (msgid for loc in locales for msgid, _ in catalogue_pairs(loc))
    else:
        texts = (msgstr for loc in GETTEXT_LOCALES[language] for _, msgstr in catalogue_pairs(loc))
    seen: dict[str, None] = {}
    for text in texts:
        clean = clean_message(text)
        if is_prose(clean):
            seen.setdefault(clean)
    return list(seen)


def manual_paragraphs(variant: str) -> list[str]:
    """Prose paragraphs and list items of one rendering of the manual, each on one line.

    Body text is indented (headings are not); tables ('|', '+'), shell sessions ('$', '#'),
    tables of contents and table captions (numbered) are not prose and are skipped.
    """
    raw = gzip.decompress((REFERENCE_DIR / f"debian-reference.{variant}.txt.gz").read_bytes())
    paragraphs = []
    for block in re.split(r"\n\s*\n", raw.decode("utf-8").replace("\xa0", " ")):
        if not all(line.startswith("    ") for line in block.split("\n") if line.strip()):
            continue
        block = CJK_LINE_BREAK.sub("", block)  # a wrapped Chinese line is one word, no space
        text = LIST_MARKER.sub("", WHITESPACE.sub(" ", block).strip())
        if text[:1] in "|+$#" or NUMBERED.search(text[:40]):
            continue
        if is_prose(text):
            paragraphs.append(text)
    return paragraphs


def looks_english(text: str) -> bool:
    """Two or more distinct English function words: an untranslated (older English) paragraph
    that the exact comparison with today's English original misses."""
    return len(set(ENGLISH_WORDS.findall(text.lower()))) >= 2


def reference_paragraphs(language: str) -> list[str]:
    """Distinct translated prose paragraphs of the manual in one language."""
    english = set() if language == "en" else set(manual_paragraphs("en"))
    seen: dict[str, None] = {}
    for variant in REFERENCE_LANGUAGES[language]:
        for paragraph in manual_paragraphs(variant):
            if language == "en" or not (paragraph in english or looks_english(paragraph)):
                seen.setdefault(paragraph)
    return list(seen)


# roff: paragraph macros end a paragraph; font macros carry text; no-fill blocks are examples
ROFF_BREAKS = {"PP", "P", "LP", "HP", "IP", "TP", "SH", "SS", "TH", "sp", "br", "RS", "RE"}
PAGE_REFERENCES = re.compile(r"([\w.:@-]+ ?\(\d\w*\)[,.]? ?)+")  # "ls(1), stat(2)": see also
ROFF_TEXT = {"B", "I", "BR", "RB", "BI", "IB", "IR", "RI", "SM", "SB"}
ROFF_NOFILL = {"nf": "fi", "EX": "EE", "TS": "TE", "EQ": "EN", "de": ".."}
ROFF_ESCAPES = re.compile(
    r"\\(f(\(..|\[[^]]*\]|.)|s[-+]?\d+|\*(\(..|\[[^]]*\]|.)|\(..|\[[^]]*\]|[&|^%:,/]|\".*$)"
)
ROFF_CHARACTERS = {
    "\\-": "-",
    "\\ ": " ",
    "\\~": " ",
    "\\0": " ",
    "\\(aq": "'",
    "\\(lq": '"',
    "\\(rq": '"',
    "\\(em": "—",
    "\\(en": "–",
    "\\(bu": "•",
}


def roff_text(line: str) -> str:
    """One roff line as plain text: common characters named, other escapes (fonts, sizes,
    strings, comments) removed. The backslash escape goes last so it starts no new escape."""
    for escape, character in ROFF_CHARACTERS.items():
        line = line.replace(escape, character)
    return ROFF_ESCAPES.sub("", line).replace("\\e", "\\")


def roff_paragraphs(source: str) -> list[str]:
    """The running-text paragraphs of one man page (no tags, headings or examples). The first
    two sections (name and synopsis, whatever their translated headings) are skipped: the
    synopsis is a command line, not prose."""
    paragraphs, current, closing, skip_tag, sections = [], [], None, False, 0
    for line in source.split("\n"):
        macro = line[1:].split(maxsplit=1) if line[:1] in ".'" else None
        name = macro[0] if macro else ""
        sections += name == "SH"
        if closing:  # inside an example block until its closing macro
            closing = None if name == closing else closing
            continue
        if sections < 3:
            continue
        if macro is not None and name not in ROFF_TEXT:
            if name in ROFF_BREAKS or name in ROFF_NOFILL:
                paragraphs.append(" ".join(current))
                current, skip_tag = [], name == "TP"
            closing = ROFF_NOFILL.get(name)
            continue
        text = roff_text(macro[1].replace('"', "") if macro and len(macro) > 1 else line)
        if skip_tag:  # the line after .TP is its tag: an option, not prose
            skip_tag = False
        elif text.strip():
            current.append(text.strip())
    paragraphs.append(" ".join(current))
    return [text for text in (WHITESPACE.sub(" ", p).strip() for p in paragraphs) if text]


def manpage_files(package: str) -> list[Path]:
    """The package's roff manual pages (gzipped, not symlinks)."""
    listed = subprocess.run(
        ["dpkg", "-L", package], check=True, capture_output=True, text=True
    ).stdout.split()
    return sorted(
        Path(f) for f in listed if f.endswith(".gz") and "/man/" in f and not Path(f).is_symlink()
    )


def manpage_paragraphs(language: str) -> list[str]:
    """Distinct prose paragraphs of a language's manual pages (translations: not English)."""
    seen: dict[str, None] = {}
    for package in MANPAGE_PACKAGES.get(language, []):
        for path in manpage_files(package):
            try:
                source = gzip.decompress(path.read_bytes()).decode("utf-8")
            except (OSError, UnicodeDecodeError):
                continue  # a page in a legacy charset: not needed
            for paragraph in map(without_option_synopsis, roff_paragraphs(source)):
                if PAGE_REFERENCES.fullmatch(paragraph) or not is_prose(paragraph):
                    continue
                if language == "en" or not looks_english(paragraph):
                    seen.setdefault(paragraph)
    return list(seen)
