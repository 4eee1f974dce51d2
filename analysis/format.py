"""Render a tidy cells frame (see `analysis.layouts`) as Markdown, LaTeX (booktabs), HTML or CSV.

A cell shows `mean ± std` (Markdown) or `$mean_{std}$` (LaTeX) with two decimals, the mean in bold where the
cells frame says `bold`, a signed number where it says `signed` (differences), "—" where the mean is
missing, and "(n=k)" / `^{n=k}` where its seed count k differs from the table's, which the caption states.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import polars as pl

LATEX_PREAMBLE = "% needs \\usepackage{booktabs} (and amssymb, pifont for check marks and circled numbers)"
_LATEX_CHARS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                "±": r"$\pm$", "✓": r"\checkmark", "Δ": r"$\Delta$", "—": "--", "−": "-", "·": r"$\cdot$",
                **{c: rf"\ding{{{172 + i}}}" for i, c in enumerate("①②③④⑤⑥⑦⑧⑨⑩")}}


@dataclass(frozen=True)
class Table:
    """One table: `cells` (tidy), the stub headers (the header of `row`, then extra stub columns of
    `cells`, e.g. the ablation check marks), a title and caption sentences."""

    name: str
    title: str
    cells: pl.DataFrame
    stub: tuple[str, ...] = ("Method",)
    notes: tuple[str, ...] = ()

    @property
    def caption(self) -> str:
        return " ".join(self.notes)


@dataclass(frozen=True)
class Grid:
    groups: list[tuple[str, int]]        # spanner label, number of sub-columns
    subs: list[str]                      # sub-column labels, left to right
    rows: list[tuple[list[str], list]]   # stub texts, cell records (dict or None) per column


def grid(table: Table) -> Grid:
    """Lay the tidy cells out: columns by (group_order, sub_order), rows by row_order."""
    cells = table.cells
    columns = cells.select("group", "group_order", "sub", "sub_order").unique().sort("group_order", "sub_order")
    keys = list(zip(columns["group"], columns["sub"]))
    lookup: dict = {}
    for record in cells.iter_rows(named=True):
        key = (record["row_order"], record["group"], record["sub"])
        if key in lookup:
            raise ValueError(f"table {table.name}: two cells at row {record['row']!r}, column {key[1:]}")
        lookup[key] = record
    stub_columns = ["row", *table.stub[1:]]
    rows = cells.select("row_order", *stub_columns).unique("row_order").sort("row_order")
    body = [([str(row[c] or "") for c in stub_columns], [lookup.get((row["row_order"], g, s)) for g, s in keys])
            for row in rows.iter_rows(named=True)]
    groups = [(g, int(columns.filter(pl.col("group") == g).height))
              for g in columns.unique("group", maintain_order=True)["group"]]
    return Grid(groups, [s for _, s in keys], body)


def common_seeds(cells: pl.DataFrame) -> int | None:
    """The seed count the caption states: the largest n among cells that have one."""
    if "n" not in cells.columns or cells["n"].drop_nulls().len() == 0:
        return None
    return int(cells["n"].max())


def _number(record: dict) -> str | None:
    mean = record.get("mean")
    if mean is None or math.isnan(mean):
        return None
    mean = round(mean, 2) + 0.0  # no "-0.00"
    return f"{mean:+.2f}" if record.get("signed") else f"{mean:.2f}"


def _std(record: dict) -> str | None:
    std = record.get("std")
    return None if std is None or math.isnan(std) else f"{std:.2f}"


def _other_n(record: dict, seeds: int | None) -> int | None:
    n = record.get("n")
    return n if n is not None and seeds is not None and n != seeds else None


def markdown_cell(record: dict | None, seeds: int | None) -> str:
    number = _number(record) if record else None
    if number is None:
        return "—"
    text = f"**{number}**" if record.get("bold") else number
    std, other = _std(record), _other_n(record, seeds)
    return text + (f" ± {std}" if std else "") + (f" (n={other})" if other is not None else "")


def latex_cell(record: dict | None, seeds: int | None) -> str:
    number = _number(record) if record else None
    if number is None:
        return "--"
    core = rf"\mathbf{{{number}}}" if record.get("bold") else number
    std, other = _std(record), _other_n(record, seeds)
    return f"${core}" + (f"_{{{std}}}" if std else "") + (f"^{{n={other}}}" if other is not None else "") + "$"


def _header(grid_: Grid, stub: tuple[str, ...]) -> list[str]:
    labels = [g for g, span in grid_.groups for _ in range(span)]
    return [*stub, *(f"{g} {s}".strip() for g, s in zip(labels, grid_.subs))]


def to_markdown(table: Table) -> str:
    """A GitHub pipe table with the title above and the caption below, columns padded to equal width."""
    layout, seeds = grid(table), common_seeds(table.cells)
    lines = [_header(layout, table.stub)]
    lines += [stub + [markdown_cell(c, seeds) for c in cells] for stub, cells in layout.rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    rule = [":" + "-" * (w - 1) if i < len(table.stub) else "-" * (w - 1) + ":" for i, w in enumerate(widths)]
    aligned = [[text.ljust(w) if i < len(table.stub) else text.rjust(w) for i, (text, w) in
                enumerate(zip(line, widths))] for line in lines]
    rows = [aligned[0], rule, *aligned[1:]]
    body = "\n".join("| " + " | ".join(cells) + " |" for cells in rows)
    return f"**{table.title}**\n\n{body}\n\n{table.caption}".rstrip() + "\n"


def latex_text(text: str) -> str:
    """Escape LaTeX specials and map ±, ✓, Δ, ①..⑩ to their commands."""
    return "".join(_LATEX_CHARS.get(char, char) for char in str(text))


def _latex_spanners(layout: Grid, offset: int) -> list[str]:
    heads, rules, start = [""] * offset, [], offset + 1
    for label, span in layout.groups:
        heads.append(rf"\multicolumn{{{span}}}{{c}}{{{latex_text(label)}}}")
        rules.append(rf"\cmidrule(lr){{{start}-{start + span - 1}}}")
        start += span
    return [" & ".join(heads) + r" \\", "".join(rules)]


def to_latex(table: Table) -> str:
    """A booktabs `table` with group spanners, `$mean_{std}$` cells and `\\mathbf` best values."""
    layout, seeds = grid(table), common_seeds(table.cells)
    offset = len(table.stub)
    spec = "l" * offset + "".join(" " + "c" * span for _, span in layout.groups)
    head = " & ".join([*map(latex_text, table.stub), *map(latex_text, layout.subs)]) + r" \\"
    body = [" & ".join([*map(latex_text, stub), *(latex_cell(c, seeds) for c in cells)]) + r" \\"
            for stub, cells in layout.rows]
    caption = latex_text(table.title) + (". " + latex_text(table.caption) if table.caption else "")
    return "\n".join([LATEX_PREAMBLE, r"\begin{table}[t]", r"\centering", rf"\caption{{{caption}}}",
                      rf"\label{{tab:{table.name}}}", rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
                      *_latex_spanners(layout, offset), head, r"\midrule", *body, r"\bottomrule",
                      r"\end{tabular}", r"\end{table}"]) + "\n"


def to_html(table: Table) -> str:
    """A styled HTML table (great_tables) with group spanners; bold best values, caption as source note."""
    from great_tables import GT

    layout, seeds = grid(table), common_seeds(table.cells)
    stub_ids = [f"s{i}" for i in range(len(table.stub))]
    cell_ids = [f"c{i}" for i in range(len(layout.subs))]
    data = {sid: [stub[i] for stub, _ in layout.rows] for i, sid in enumerate(stub_ids)}
    data |= {cid: [markdown_cell(cells[j], seeds) for _, cells in layout.rows] for j, cid in enumerate(cell_ids)}
    gt = (GT(pl.DataFrame(data), id=table.name).tab_header(title=table.title)
          .fmt_markdown(columns=cell_ids).cols_align("right", columns=cell_ids)
          .cols_label(**dict(zip(stub_ids, table.stub)), **dict(zip(cell_ids, layout.subs))))
    start = 0
    for index, (label, span) in enumerate(layout.groups):
        gt = gt.tab_spanner(label=label, columns=cell_ids[start:start + span], id=f"g{index}")
        start += span
    if table.caption:
        gt = gt.tab_source_note(table.caption)
    return gt.as_raw_html()


def to_csv(table: Table) -> str:
    """The cells with full precision (one line per cell), for plotting or re-formatting elsewhere."""
    return table.cells.sort("row_order", "group_order", "sub_order").write_csv()


FORMATS = {"md": to_markdown, "tex": to_latex, "csv": to_csv, "html": to_html}
