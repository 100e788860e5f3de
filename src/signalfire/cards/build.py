"""Lay out the civilian card (one A4 page) as PDF with reportlab, and render it to PNG with
pypdfium2, so the picture is exactly the page that prints.

The PDF embeds DejaVu Sans (subset) for the Armenian and Cyrillic letters and is built
with reportlab's invariant mode (no date, fixed document id), so a rebuild of unchanged
text gives the same bytes and the committed cards change only when the words do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import SignalfireError
from .fonts import BOLD, REGULAR, font_path
from .text import EXAMPLE_REF, CardText, card_text

PNG_DPI = 110  # enough to read the smallest line on a phone; about 900 x 1290 pixels
FONT, FONT_BOLD = "SignalfireSans", "SignalfireSans-Bold"
INK, MUTED, ACCENT, SHADE = "#111111", "#444444", "#b3261e", "#f2efe9"


def _reportlab() -> Any:
    try:
        import reportlab
    except ImportError as exc:
        raise SignalfireError(
            f"making the card needs reportlab ({exc}); install signalfire[kit]"
        ) from None
    from reportlab.lib.fonts import addMapping
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(FONT, str(font_path(REGULAR))))
        pdfmetrics.registerFont(TTFont(FONT_BOLD, str(font_path(BOLD))))
        # <b> in a paragraph picks the bold face of the same family.
        addMapping(FONT, 0, 0, FONT)
        addMapping(FONT, 1, 0, FONT_BOLD)
        addMapping(FONT, 0, 1, FONT)
        addMapping(FONT, 1, 1, FONT_BOLD)
    return reportlab


def _styles() -> dict[str, Any]:
    from reportlab.lib.styles import ParagraphStyle

    base = ParagraphStyle("base", fontName=FONT, fontSize=10, leading=12.8, textColor=INK)
    return {
        "title": ParagraphStyle("title", base, fontName=FONT_BOLD, fontSize=21, leading=25),
        "subtitle": ParagraphStyle("subtitle", base, textColor=MUTED, spaceAfter=4),
        "heading": ParagraphStyle(
            "heading",
            base,
            fontName=FONT_BOLD,
            fontSize=13,
            leading=16,
            spaceBefore=6,
            spaceAfter=2,
            textColor=ACCENT,
        ),
        "body": ParagraphStyle("body", base, spaceAfter=2),
        "bullet": ParagraphStyle("bullet", base, leftIndent=11, bulletIndent=0, spaceAfter=2),
        "example": ParagraphStyle(
            "example", base, fontName=FONT_BOLD, fontSize=14, leading=18, leftIndent=11
        ),
        "reply": ParagraphStyle(
            "reply",
            base,
            fontSize=10,
            leading=13,
            leftIndent=11,
            rightIndent=6,
            backColor=SHADE,
            borderPadding=(4, 6, 4, 6),
            spaceBefore=3,
            spaceAfter=6,
        ),
        "cell": ParagraphStyle("cell", base),
        "cellbold": ParagraphStyle("cellbold", base, fontName=FONT_BOLD),
        "small": ParagraphStyle("small", base, fontSize=8.5, leading=10.5, textColor=MUTED),
        "qr": ParagraphStyle("qr", base, fontSize=9, leading=11, alignment=1, textColor=MUTED),
    }


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class _QrBox:
    """A dashed square saying where the network's QR code goes (the generic card)."""

    def __new__(cls, size: float, label: str, style: Any) -> Any:
        from reportlab.platypus import Flowable, Paragraph

        class Box(Flowable):  # type: ignore[misc]
            def wrap(self, available_width: float, available_height: float) -> tuple[float, float]:
                return size, size

            def draw(self) -> None:
                canvas = self.canv
                canvas.setDash(4, 3)
                canvas.setStrokeColor(MUTED)
                canvas.roundRect(0, 0, size, size, 6)
                para = Paragraph(_escape(label), style)
                _, height = para.wrap(size - 16, size)
                para.drawOn(canvas, 8, (size - height) / 2)

        return Box()


def _qr_flowable(url: str | None, size: float, text: CardText, channel: str | None) -> list[Any]:
    from reportlab.platypus import Image, Paragraph

    styles = _styles()
    if url is None:
        return [_QrBox(size, text.qr_placeholder, styles["qr"])]
    import io

    from ..onboarding import qr_image

    buffer = io.BytesIO()
    qr_image(url, box_size=8).save(buffer, format="PNG")
    buffer.seek(0)
    caption = text.qr_caption.format(channel=channel or "")
    return [Image(buffer, width=size, height=size), Paragraph(_escape(caption), styles["qr"])]


def story(text: CardText, *, channel_url: str | None, channel: str | None) -> list[Any]:
    from reportlab.lib import colors
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, Spacer, Table, TableStyle

    s = _styles()
    width = 180 * mm - 12  # A4 less 15 mm margins and the frame's 6 pt padding each side

    def bullets(lines: tuple[str, ...], **fmt: str) -> list[Any]:
        return [Paragraph(line.format(**fmt), s["bullet"], bulletText="•") for line in lines]

    parts: list[Any] = [
        Paragraph(_escape(text.title), s["title"]),
        Paragraph(_escape(text.subtitle), s["subtitle"]),
    ]

    qr_size = 40 * mm
    join = [Paragraph(text.join_heading, s["heading"]), *bullets(text.join)]
    join_table = Table(
        [[join, _qr_flowable(channel_url, qr_size, text, channel)]],
        colWidths=[width - qr_size - 8 * mm, qr_size + 8 * mm],
        hAlign="LEFT",
    )
    join_table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 0),
                ("ALIGN", (1, 0), (1, 0), "CENTER"),
                ("TOPPADDING", (1, 0), (1, 0), 10),
            ]
        )
    )
    parts.append(join_table)

    parts.append(Paragraph(text.send_heading, s["heading"]))
    for line, example in zip(text.send, text.examples, strict=True):
        parts.append(Paragraph(line, s["body"]))
        parts.append(Paragraph(_escape(example), s["example"]))
    parts.append(Spacer(1, 3))
    rows = [[Paragraph(h, s["cellbold"]) for h in text.words_heading]]
    for word in text.words:
        shown = word.local if word.local == word.canned else f"{word.local} · {word.canned}"
        rows.append([Paragraph(_escape(shown), s["cellbold"]), Paragraph(word.meaning, s["cell"])])
    table = Table(rows, colWidths=[62 * mm, width - 62 * mm], hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor(SHADE)]),
                ("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.HexColor(MUTED)),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("TOPPADDING", (0, 0), (-1, -1), 1.5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
            ]
        )
    )
    parts += [table, Spacer(1, 4), Paragraph(text.buttons, s["body"])]

    parts.append(Paragraph(text.reply_heading, s["heading"]))
    parts.append(Paragraph(text.reply_intro, s["body"]))
    parts.append(Paragraph(_escape(text.example_reply()), s["reply"]))
    parts += bullets(text.reply_meaning, ref=EXAMPLE_REF)

    parts.append(Paragraph(text.no_reply_heading, s["heading"]))
    parts += bullets(text.no_reply)

    safety = [Paragraph(text.safety_heading, s["heading"]), *bullets(text.safety)]
    box = Table([[safety]], colWidths=[width], hAlign="LEFT")
    box.setStyle(
        TableStyle(
            [
                ("BOX", (0, 0), (-1, -1), 1.2, colors.HexColor(ACCENT)),
                ("LEFTPADDING", (0, 0), (-1, -1), 8),
                ("RIGHTPADDING", (0, 0), (-1, -1), 8),
                ("TOPPADDING", (0, 0), (-1, -1), 0),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
            ]
        )
    )
    parts += [Spacer(1, 8), box]
    return parts


def write_pdf(
    lang: str, path: Path, *, channel_url: str | None = None, channel: str | None = None
) -> Path:
    _reportlab()
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.platypus import SimpleDocTemplate

    text = card_text(lang)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = SimpleDocTemplate(
        str(path),
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=13 * mm,
        bottomMargin=12 * mm,
        title=text.title,
        author="signalfire",
        subject="civilian card",
        lang=lang,
        invariant=True,
    )
    doc.build(story(text, channel_url=channel_url, channel=channel))
    return path


def write_png(pdf: Path, png: Path, *, dpi: int = PNG_DPI) -> Path:
    try:
        import pypdfium2
    except ImportError as exc:
        raise SignalfireError(
            f"rendering the card as PNG needs pypdfium2 ({exc}); install signalfire[kit]"
        ) from None
    document = pypdfium2.PdfDocument(str(pdf))
    try:
        image = document[0].render(scale=dpi / 72).to_pil()
    finally:
        document.close()
    image.convert("RGB").save(png, format="PNG", optimize=True)
    return Path(png)


def write_card(
    lang: str,
    pdf: Path,
    *,
    channel_url: str | None = None,
    channel: str | None = None,
    png: bool = True,
) -> list[Path]:
    """Write the card as PDF (and PNG beside it); returns the paths written."""
    written = [write_pdf(lang, pdf, channel_url=channel_url, channel=channel)]
    if png:
        written.append(write_png(written[0], Path(pdf).with_suffix(".png")))
    return written
