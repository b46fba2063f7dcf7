"""The language-ID data preparation (export/fortunes.py, export/langid_sources.py) on items the
test makes: no held-out text is trained on, snippets are as long as they claim, and catalogue
messages are cleaned into prose."""

from __future__ import annotations

import json
import re

import pytest

from helpers import export_script


@pytest.fixture(scope="module")
def modules():
    with export_script("fortunes") as fortunes, export_script("langid_sources") as sources:
        yield fortunes, sources


def made_up_items(language: str, count: int = 300) -> list[str]:
    """Items whose every 11-character window holds the item's whole tag (period 6), so any
    crop (12 characters or more) or snippet says which item it came from."""
    return [f"{language}{i:03d}|" * (4 + i % 15) for i in range(count)]


def tags(text: str) -> set[str]:
    return set(re.findall(r"[a-z]{2}\d{3}\|", text))


def test_split_keeps_every_held_out_item_out_of_training(modules, tmp_path, monkeypatch):
    fortunes, _ = modules
    monkeypatch.setattr(fortunes, "fortunes_of", made_up_items)
    monkeypatch.setattr(fortunes, "PACKAGES", {"aa": [], "bb": []})
    fortunes.prepare_langid(tmp_path, sources=("fortunes",))
    rows = {
        name: [json.loads(line) for line in (tmp_path / f"{name}.jsonl").read_text().splitlines()]
        for name in ("train", "valid", "test20", "test60")
    }
    trained = set().union(*(tags(r["text"]) for r in rows["train"]))
    assert all(tags(r["text"]) for r in rows["train"])  # every crop names its item
    for name in ("valid", "test20", "test60"):
        assert rows[name], name
        for row in rows[name]:
            assert row["source"] == "fortunes" and row["lang"] == row["text"][:2]
            assert tags(row["text"]) and not tags(row["text"]) & trained, row
    assert {len(r["text"]) for r in rows["test60"]} == {60}
    assert {len(r["text"]) for r in rows["test20"]} == {20}
    assert len(trained) > 400  # the training part itself is used


def test_catalogue_messages_become_prose(modules):
    _, sources = modules
    clean = sources.clean_message
    assert clean("Cannot open %s: %d%% done\n") == "Cannot open : done"
    assert clean("_Open the <b>file</b> %1$s") == "Open the file"
    assert clean("文件(_F)") == "文件"
    assert sources.is_prose("Datei konnte nicht geöffnet werden")
    assert not sources.is_prose("--verbose -q -x 1234 5678 /usr/bin")


@pytest.mark.parametrize(
    ("message", "prose"),
    [
        ("-d, --default-domain=NAME use NAME.po", "use NAME.po"),
        ("-P PASSWORD password for the server", "password for the server"),
        ("--backup[=CONTROLE] faz backup de cada arquivo", "faz backup de cada arquivo"),
        ("-s, --silent   mostra nada", "mostra nada"),
        ("-d todo excepto líderes", "todo excepto líderes"),
        ("- Hola, ¿qué tal?", "- Hola, ¿qué tal?"),  # a dialogue dash, not an option
        ("Use -v to see more", "Use -v to see more"),  # an option inside prose stays
    ],
)
def test_a_help_line_is_judged_by_its_prose_not_its_option_synopsis(modules, message, prose):
    """A leading option synopsis is the same in every language: cut before cropping."""
    _, sources = modules
    assert sources.clean_message(message) == prose


def test_an_untranslated_paragraph_is_recognised_as_english(modules):
    _, sources = modules
    assert sources.looks_english("Run the command and check that the file exists.")
    assert not sources.looks_english("Führen Sie den Befehl aus und prüfen Sie die Datei.")


MAN_PAGE = r""".\" A translated page as manpages-de ships it
.TH LS 1 "September 2022" "GNU coreutils 9.1" "Dienstprogramme für Benutzer"
.SH BEZEICHNUNG
ls \- Verzeichnisinhalte auflisten
.SH ÜBERSICHT
\fBls\fP [\fI\,OPTION\/\fP]… [\fI\,DATEI\/\fP]…
.SH BESCHREIBUNG
.PP
Auflistung von Informationen über die DATEIen (Standardvorgabe ist das
aktuelle Verzeichnis), sortiert, falls weder \fB\-cftuvSUX\fP noch
.B \-\-sort
angegeben wurden.
.TP
\fB\-a\fP, \fB\-\-all\fP
Einträge nicht ignorieren, die mit \(aq.\(aq beginnen
.nf
ls \-la /tmp
.fi
.SH "SIEHE AUCH"
dir(1), vdir(1), stat(2)
"""


def test_a_man_page_becomes_its_prose_paragraphs(modules):
    _, sources = modules
    assert sources.roff_paragraphs(MAN_PAGE) == [
        "Auflistung von Informationen über die DATEIen (Standardvorgabe ist das aktuelle "
        "Verzeichnis), sortiert, falls weder -cftuvSUX noch --sort angegeben wurden.",
        "Einträge nicht ignorieren, die mit '.' beginnen",  # the option tag is dropped
        # the example block (ls -la /tmp) is not prose
        "dir(1), vdir(1), stat(2)",
    ]
    assert sources.PAGE_REFERENCES.fullmatch("dir(1), vdir(1), stat(2)")  # then left out
    assert not sources.PAGE_REFERENCES.fullmatch("Siehe ls(1) für Einzelheiten.")
