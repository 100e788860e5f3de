"""The civilian card: one page per language, the status words the gateway reads, the fonts
embedded, and the committed PDFs equal to a fresh build of their source."""

from __future__ import annotations

from pathlib import Path

import pytest
import zxingcpp
from click.testing import CliRunner
from PIL import Image
from pypdf import PdfReader

from signalfire.cards.text import CARDS, LANGS, card_text
from signalfire.cli import main
from signalfire.intake.keywords import parse_message
from signalfire.onboarding import channel_url
from signalfire.profile import init_network

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "docs" / "civilian-card"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cards")
    result = CliRunner().invoke(main, ["docs", "card", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def words_on_page(pdf: Path) -> str:
    reader = PdfReader(pdf)
    return "\n".join(page.extract_text() for page in reader.pages)


@pytest.mark.parametrize("lang", LANGS)
def test_each_card_is_one_page_with_its_status_words_and_embedded_fonts(
    built: Path, lang: str
) -> None:
    pdf = built / f"card-{lang}.pdf"
    reader = PdfReader(pdf)
    assert len(reader.pages) == 1
    text = words_on_page(pdf)
    card = card_text(lang)
    for word in card.words:
        assert word.local in text, (lang, word.local)
        assert word.canned in text, (lang, word.canned)
    for example in card.examples:
        assert example in text
    assert card.example_reply().split()[0] in text
    # Three safety lines, in the card's language.
    for line in card.safety:
        assert line.split()[0] in text
    fonts = {
        font["/BaseFont"]
        for page in reader.pages
        for font in page["/Resources"]["/Font"].values()  # type: ignore[union-attr]
    }
    # Subset-embedded TrueType ("ABCDEF+DejaVuSans"): readers need no font of their own.
    assert any("DejaVuSans" in str(name) and "+" in str(name) for name in fonts), fonts
    png = Image.open(built / f"card-{lang}.png")
    assert png.size[0] < png.size[1]  # portrait A4
    assert 800 <= png.size[0] <= 1000


@pytest.mark.parametrize("lang", LANGS)
def test_every_word_on_the_card_is_read_by_the_gateway_as_meant(lang: str) -> None:
    card = CARDS[lang]
    for word in card.words:
        for typed in (word.local, word.canned, f"{word.local} 2"):
            assert parse_message(typed).status == word.status, (lang, typed)
    people, status = 3, card.words[0].status
    parsed = parse_message(card.examples[0])
    assert (parsed.status, parsed.people) == (status, people)
    parsed = parse_message(card.examples[1])
    assert parsed.people == 2 and parsed.text  # the few words are kept as text
    if lang != "en":
        assert parsed.lang == lang  # the reply comes back in the card's language


@pytest.mark.parametrize("lang", LANGS)
def test_committed_cards_match_their_source(built: Path, lang: str) -> None:
    # reportlab's invariant mode makes the build byte-for-byte reproducible.
    committed = COMMITTED / f"card-{lang}.pdf"
    assert committed.read_bytes() == (built / f"card-{lang}.pdf").read_bytes(), (
        f"{committed} is stale: run scripts/build-cards"
    )
    assert (COMMITTED / f"card-{lang}.png").is_file()


def test_a_card_for_one_network_carries_its_channel_qr(tmp_path: Path) -> None:
    profile, _ = init_network(tmp_path / "net", "town", region="EU_868")
    out = tmp_path / "town-ru.pdf"
    result = CliRunner().invoke(
        main,
        ["docs", "card", "--lang", "ru", "--network", str(tmp_path / "net"), "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert len(PdfReader(out).pages) == 1
    assert "Канал town" in words_on_page(out)
    found = [r.text for r in zxingcpp.read_barcodes(Image.open(out.with_suffix(".png")))]
    assert found == [channel_url(profile)]
    key = (tmp_path / "net" / "network.key").read_text()
    assert "".join(key.splitlines()[1:-1]) not in words_on_page(out)


def test_several_languages_need_a_directory(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["docs", "card", "--out", str(tmp_path / "x.pdf")])
    assert result.exit_code == 1
    assert "a .pdf --out takes one --lang" in result.output
