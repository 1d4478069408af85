"""The PDF report for a date range (KPIs, a revenue chart, the campaign table), made with fpdf2
from the same reports.dashboard() data the dashboard shows."""
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from popup_mgr import reports

PINK = (214, 36, 110)
BLUE = (31, 95, 191)
INK = (27, 31, 36)
MUTED = (91, 100, 112)
LINE = (227, 230, 234)
CAMPAIGN_ROWS = 40  # the PDF is a summary; the CSV export has every row


def _text(value):
    """fpdf2's core fonts are Latin-1: anything else becomes '?' instead of failing the report."""
    return str(value).encode("latin-1", "replace").decode("latin-1")


def build(data, tz, generated):
    """The report as PDF bytes."""
    scope = data["scope"]
    pdf = FPDF(orientation="landscape", unit="mm", format="A4")
    pdf.set_title(_text(f"popup_mgr report {scope.first} to {scope.last}"))
    pdf.set_author("popup_mgr")
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.add_page()
    _header(pdf, data, tz, generated)
    _kpis(pdf, data)
    _chart(pdf, data)
    _campaigns(pdf, data)
    return bytes(pdf.output())


def _header(pdf, data, tz, generated):
    scope = data["scope"]
    pdf.set_text_color(*PINK)
    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(0, 9, "Mode popups - revenue report", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_text_color(*MUTED)
    pdf.set_font("Helvetica", "", 10)
    prop = "all properties" if scope.property_code == "all" else f"property {scope.property_code}"
    pdf.cell(0, 6, _text(f"{scope.first} to {scope.last} ({scope.days} days, {tz}), {prop}."
                         f" Generated {generated}."), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(3)


def _kpis(pdf, data):
    width = (pdf.w - pdf.l_margin - pdf.r_margin) / 4
    for index, kpi in enumerate(data["kpis"]):
        if index % 4 == 0 and index:
            pdf.ln(18)
        x = pdf.l_margin + (index % 4) * width
        y = pdf.get_y()
        pdf.set_draw_color(*LINE)
        pdf.rect(x, y, width - 3, 16)
        pdf.set_xy(x + 2, y + 1.5)
        pdf.set_text_color(*MUTED)
        pdf.set_font("Helvetica", "", 8)
        pdf.cell(width - 7, 4, _text(kpi["label"].upper()))
        pdf.set_xy(x + 2, y + 6)
        pdf.set_text_color(*INK)
        pdf.set_font("Helvetica", "B", 13)
        pdf.cell(width - 7, 6, _text(reports.display(kpi["value"], kpi["kind"])))
        pdf.set_xy(x + 2, y + 11.5)
        pdf.set_font("Helvetica", "", 7)
        pdf.set_text_color(*MUTED)
        pdf.cell(width - 7, 3.5, _text(_change_text(kpi)))
        pdf.set_xy(pdf.l_margin, y)
    pdf.ln(21)


def _change_text(kpi):
    if kpi["change"] is None:
        return "no previous data"
    return f"{kpi['change'] * 100:+.1f}% vs previous period"


def _chart(pdf, data):
    """Revenue per chart point as bars, with a labelled value axis."""
    points = data["points"]
    left, top = pdf.l_margin + 16, pdf.get_y() + 8
    width, height = pdf.w - pdf.r_margin - left, 48
    pdf.set_text_color(*INK)
    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(0, 6, _text(f"Revenue per {data['unit']} (USD)"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    peak = _nice_ceiling(max([1] + [p["revenue_cents"] for p in points]))
    pdf.set_font("Helvetica", "", 7)
    pdf.set_text_color(*MUTED)
    pdf.set_draw_color(*LINE)
    for step in range(5):
        value = peak * step // 4
        y = top + height - height * step / 4
        pdf.line(left, y, left + width, y)
        pdf.set_xy(pdf.l_margin, y - 2)
        pdf.cell(15, 4, _text(reports.display_money(value)), align="R")
    slot = width / max(1, len(points))
    pdf.set_fill_color(*BLUE)
    label_every = max(1, len(points) // 12)
    for index, point in enumerate(points):
        bar = height * point["revenue_cents"] / peak
        x = left + index * slot
        if bar > 0:
            pdf.rect(x + slot * 0.15, top + height - bar, slot * 0.7, bar, style="F")
        if index % label_every == 0:
            pdf.set_xy(x - 4, top + height + 1)
            pdf.cell(slot + 8, 3, _text(point["label"]), align="C")
    pdf.set_y(top + height + 7)


def _nice_ceiling(cents):
    """The smallest 1, 2 or 5 x 10^n multiple of 4 at or above cents, so axis steps are round."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor * 4 >= cents:
                return step * factor * 4
        step *= 10


def _campaigns(pdf, data):
    pdf.set_fill_color(246, 247, 249)
    pdf.set_text_color(*INK)
    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(0, 7, "Campaigns", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", "", 8)
    header = ("Campaign", "Impressions", "Clicks", "CTR", "Conversions", "Revenue", "RPM", "EPC")
    rows = data["campaigns"][:CAMPAIGN_ROWS]
    with pdf.table(col_widths=(70, 25, 20, 18, 22, 25, 18, 18), text_align=("LEFT",) + ("RIGHT",) * 7,
                   line_height=5, borders_layout="HORIZONTAL_LINES", cell_fill_mode="ROWS",
                   cell_fill_color=(246, 247, 249),
                   headings_style=_headings_style()) as table:
        table.row([_text(h) for h in header])
        for c in rows:
            table.row([_text(c["name"]), reports.display_count(c["impressions"]),
                       reports.display_count(c["clicks"]), reports.display_percent(c["ctr"]),
                       reports.display_count(c["conversions"]), reports.display_money(c["revenue_cents"]),
                       reports.display_money(c["rpm_cents"]), reports.display_money(c["epc_cents"])])
    if len(data["campaigns"]) > CAMPAIGN_ROWS:
        pdf.cell(0, 6, f"... and {len(data['campaigns']) - CAMPAIGN_ROWS} more campaigns (see the CSV export).")
    unattributed = data["unattributed"]
    if unattributed["conversions"]:
        pdf.ln(4)
        pdf.cell(0, 6, _text(f"Unattributed conversions (unknown click id, not in the figures above): "
                             f"{unattributed['conversions']}, "
                             f"{reports.display_money(unattributed['revenue_cents'])}"))


def _headings_style():
    from fpdf.fonts import FontFace
    return FontFace(emphasis="BOLD", color=MUTED)
