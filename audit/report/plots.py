"""Matplotlib figures rendered to inline SVG strings (text kept as text, so PDFs stay searchable)."""

from __future__ import annotations

import io
import textwrap

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

# text.parse_math off: labels carry dataset values (group names, conditions, attributes); a '$' in
# them must not start mathtext (which can fail to parse and abort the report). usetex off: no TeX run.
plt.rcParams.update({"svg.fonttype": "none", "font.size": 8, "axes.spines.top": False, "axes.spines.right": False,
                     "font.family": "DejaVu Sans", "svg.hashsalt": "faceaudit", "text.parse_math": False,
                     "text.usetex": False})
COLOURS = ["#3b6ea5", "#d9822b", "#5a9e6f", "#b5485d", "#7d6bb0", "#8c8c8c", "#c2a83e"]


def plain(text) -> str:
    """Text shown by matplotlib as written (mathtext is off for every text, see rcParams above)."""
    return str(text)


def to_svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    svg = buf.getvalue()
    return svg[svg.index("<svg"):]


def plain_log(*axes) -> None:
    """Log axes labelled in plain text (1e-05, 0.001, 1, 100): matplotlib's default log labels are mathtext,
    which is off here (rcParams), so they would print as '$\\mathdefault{10^{-3}}$'."""
    for axis in axes:
        axis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        axis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def rotated_ticks(ax, positions, labels, fontsize: float = 7) -> None:
    """Category labels at 45°, each anchored at its tick by its right end (``rotation_mode="anchor"``), so long
    and short labels line up and neighbours do not run into each other."""
    ax.set_xticks(positions, [plain(v) for v in labels], rotation=45, ha="right", rotation_mode="anchor",
                  fontsize=fontsize)


def thinned(values, min_ratio: float = 1.35) -> list:
    """Of positive tick positions on a log axis, those at least ``min_ratio`` apart, so their labels do not overlap
    (161 and 181, say): the first and the largest are kept, the largest replacing a neighbour too close to it."""
    values = sorted(v for v in values if v > 0)
    kept: list = []
    for v in values:
        if kept and v / kept[-1] < min_ratio:
            if v == values[-1] and len(kept) > 1:
                kept[-1] = v
            continue
        kept.append(v)
    return kept


def _err(df: pd.DataFrame) -> np.ndarray:
    """Error bars below and above each value; an end that is missing or unbounded draws none."""
    ends = df[["value", "ci_low", "ci_high"]].astype(float).replace([np.inf, -np.inf], np.nan)
    lo = (ends["value"] - ends["ci_low"]).clip(lower=0).fillna(0)
    hi = (ends["ci_high"] - ends["value"]).clip(lower=0).fillna(0)
    return np.vstack([lo.to_numpy(), hi.to_numpy()])


def leakage_bars(metrics: pd.DataFrame) -> str | None:
    """Per attribute: headline leakage per condition, attacker trained on clean vs on the same condition."""
    m = metrics[(metrics["probe"] == "leakage") & metrics["metric"].isin(["normalised_gain", "mae_gain"])
                & metrics["setting"].isin(["train=clean", "train=same"])]
    if m.empty:
        return None
    attrs = list(dict.fromkeys(m["attribute"]))
    conds = list(dict.fromkeys(m["condition"]))
    # constrained layout with the legend "outside lower center": the legend is placed below the rotated tick
    # labels, never on them
    fig, axes = plt.subplots(1, len(attrs), figsize=(2.0 * len(attrs) + 1.2, 3.1), sharey=True, squeeze=False,
                             layout="constrained")
    width = 0.38
    for ax, attr in zip(axes[0], attrs):
        a = m[m["attribute"] == attr]
        x = np.arange(len(conds))
        for j, (setting, label) in enumerate([("train=same", "attacker trained on same condition"),
                                              ("train=clean", "attacker trained on clean faces")]):
            rows = a[a["setting"] == setting].set_index("condition").reindex(conds)
            ax.bar(x + (j - 0.5) * width, rows["value"].fillna(0), width, yerr=_err(rows), capsize=2,
                   color=COLOURS[j], label=label)
            for i in np.flatnonzero(rows["value"].isna() & rows.index.isin(a[a["setting"] == setting]["condition"])):
                # stored without a number (too few labelled persons, one class): not a bar at 0, which reads chance
                ax.text(x[i] + (j - 0.5) * width, 0, "not measured", rotation=90, ha="center", va="bottom",
                        fontsize=6, color="#555")
        ax.axhline(0, color="black", lw=0.6)
        ax.set_title(f"{str(attr).replace('_', ' ')} ({a['metric'].iloc[0].replace('_', ' ')})")
        rotated_ticks(ax, x, conds)
    axes[0][0].set_ylabel("leakage (0 = chance, 1 = fully readable)")
    low = float(m["ci_low"].min())
    axes[0][0].set_ylim(min(-0.15, low - 0.05) if np.isfinite(low) else -0.15, 1.05)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=2, fontsize=7, frameon=False)
    return to_svg(fig)


def det_curves(curves: dict[str, dict], points: pd.DataFrame | None = None) -> str | None:
    """DET plot: FNMR against FMR on log axes, one line per condition; ``points`` (condition, setting,
    fmr, fnmr) marks each operating point at the system threshold on its condition's curve."""
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(4.6, 3.3))
    markers = "os^Dv"
    for i, (cond, pts) in enumerate(curves.items()):
        fmr, fnmr = np.asarray(pts["fmr"]), np.asarray(pts["fnmr"])
        keep = (fmr > 0) & (fnmr > 0)
        colour = COLOURS[i % len(COLOURS)]
        ax.plot(fmr[keep], fnmr[keep], color=colour, lw=1.3, label=cond)
        if points is not None and not points.empty:
            mine = points[points["condition"] == cond].sort_values("setting")
            for j, r in enumerate(mine.itertuples()):
                # Rates of 0 cannot sit on log axes: draw them at the axis floor.
                ax.plot(max(r.fmr, 1e-5), max(r.fnmr, 1e-4), markers[j % len(markers)], color=colour, ms=4,
                        mfc="white", mew=1.0, label=plain(r.setting.replace("fmr=", "τ @ FMR ")) if i == 0 else None)
    ax.set_xscale("log")
    ax.set_yscale("log")
    plain_log(ax.xaxis, ax.yaxis)
    ax.set_xlabel("false match rate (FMR)")
    ax.set_ylabel("false non-match rate (FNMR)")
    ax.set_xlim(1e-5, 1)
    ax.set_ylim(1e-4, 1)
    ax.grid(True, which="major", lw=0.3)
    ax.legend(fontsize=6, frameon=False)
    return to_svg(fig)


def convergence(panels: dict[str, dict[str, dict]]) -> str | None:
    """One panel per attack (or per cloak setting), one line per attack in it: its own objective against its
    steps (epochs), the last one marked (o: the plateau stopped it, x: the cap), so a reader can see it had
    levelled off. ``panels`` maps a panel title to {line label: :meth:`audit.probes.convergence.Plateau.record`}."""
    panels = {title: kept for title, lines in panels.items()
              if (kept := {label: rec for label, rec in lines.items() if rec and rec.get("curve")})}
    if not panels:
        return None
    # constrained layout keeps each panel's y label clear of its left neighbour; long labels wrap on two lines
    fig, axes = plt.subplots(1, len(panels), figsize=(2.8 * len(panels) + 0.7, 2.4), squeeze=False,
                             layout="constrained")
    fig.get_layout_engine().set(wspace=0.06)
    for ax, (title, lines) in zip(axes[0], panels.items()):
        for i, (label, rec) in enumerate(lines.items()):
            y = np.asarray(rec["curve"], float)
            colour = COLOURS[i % len(COLOURS)]
            ax.plot(np.arange(1, len(y) + 1), y, color=colour, lw=1.2, label=plain(label))
            ax.plot([len(y)], [y[-1]], marker="x" if rec.get("stopped_by") == "cap" else "o", ms=3.5, color=colour)
        ax.set_title(plain(title), fontsize=7)
        ax.set_xlabel(f"{'epoch' if 'epoch' in title else 'step'} (o: plateau, x: cap)", fontsize=6)
        ax.set_ylabel(textwrap.fill(plain(next(iter(lines.values())).get("measure", "objective")), 32), fontsize=6)
        ax.tick_params(labelsize=6)
        ax.grid(True, lw=0.3)
        if len(lines) > 1:
            ax.legend(fontsize=5.5, frameon=False)
    return to_svg(fig)


def query_curve(attack: dict | None) -> str | None:
    """The query-only inversion attack: share of victims whose best image so far passes at each FMR, against the
    queries spent per victim (log scale); ``attack``: the probe's ``query_attack.json``."""
    curve = (attack or {}).get("curve") or {}
    if not curve.get("queries"):
        return None
    fig, ax = plt.subplots(figsize=(4.2, 2.3))
    for i, (fmr, sar) in enumerate(sorted(curve["sar_type1"].items(), key=lambda kv: float(kv[0]))):
        ax.plot(curve["queries"], sar, marker="o", ms=3, lw=1.2, color=COLOURS[i % len(COLOURS)],
                label=plain(f"FMR {fmr}"))
    ax.set_xscale("log")
    # plain tick labels at the points read (the log axis' default labels are mathtext, which is off here)
    ticks = thinned(curve["queries"])
    ax.set_xticks(ticks, [f"{q:g}" for q in ticks])
    plain_log(ax.xaxis)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("queries per victim (1 = the decoder's image alone)", fontsize=6)
    ax.set_ylabel("SAR type I (target)", fontsize=6)
    ax.tick_params(labelsize=6)
    ax.grid(True, lw=0.3)
    # beside the axes: the curves often run along the top (every victim passes), where a legend inside would hide them
    ax.legend(fontsize=6, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return to_svg(fig)


def cloak_convergence(records: list[dict]) -> str | None:
    """:func:`convergence` of the cloak attacks: one panel per surrogate setting, one line per method (and
    budget, when the run has several)."""
    several = len({r["eps"] for r in records if r.get("curve")}) > 1
    panels: dict[str, dict[str, dict]] = {}
    for rec in records:
        panels.setdefault(rec["setting"], {})[f"{rec['method']} @{rec['eps']:g}" if several else rec["method"]] = rec
    return convergence(panels)


def group_rates(metrics: pd.DataFrame, condition: str = "clean") -> str | None:
    """Per attribute: group FMR and FNMR at the global threshold, with intervals."""
    m = metrics[(metrics["probe"] == "identity") & (metrics["condition"] == condition)
                & metrics["metric"].isin(["group_fmr", "group_fnmr"])]
    if m.empty:
        return None
    attrs = list(dict.fromkeys(m["attribute"]))
    fig, axes = plt.subplots(2, len(attrs), figsize=(1.8 * len(attrs) + 1.2, 3.6), squeeze=False)
    for col, attr in enumerate(attrs):
        for row, metric in enumerate(["group_fmr", "group_fnmr"]):
            ax = axes[row][col]
            d = m[(m["attribute"] == attr) & (m["metric"] == metric)]
            shown = d["value"].notna().to_numpy()  # a group without comparisons of its own: words, not a bar at 0
            ax.bar(np.arange(len(d))[shown], d["value"][shown], yerr=_err(d[shown]), capsize=2, color=COLOURS[row])
            for i in np.flatnonzero(~shown):
                ax.text(i, 0, "not measured", rotation=90, ha="center", va="bottom", fontsize=6, color="#555")
            ax.set_xticks(range(len(d)), d["group"], rotation=40, ha="right", fontsize=6)
            if row == 0:
                ax.set_title(attr)
            if col == 0:
                ax.set_ylabel(metric.replace("group_", "").upper())
    fig.tight_layout()
    return to_svg(fig)


def compare_bars(rows: pd.DataFrame, title: str) -> str | None:
    """One bar per run (label column) with intervals. A run without the measure gets no bar but the words "not
    measured" (a bar at 0 would read as an error rate of 0), an infinite value (a ratio over a group with no errors)
    the words "no upper bound"."""
    if rows.empty:
        return None
    fig, ax = plt.subplots(figsize=(max(3.0, 0.9 * len(rows) + 1.5), 2.4))
    value = rows["value"].astype(float)
    finite = np.isfinite(value.to_numpy())
    x = np.arange(len(rows))
    colours = np.array([COLOURS[i % len(COLOURS)] for i in range(len(rows))])
    if finite.any():
        ax.bar(x[finite], value[finite], yerr=_err(rows[finite]), capsize=3, color=colours[finite])
    for i in np.flatnonzero(~finite):
        ax.text(i, 0, "no upper bound" if np.isinf(value.iloc[i]) else "not measured", rotation=90, ha="center",
                va="bottom", fontsize=7, color="#555")
    ax.set_xticks(x, rows["label"], rotation=20, ha="right")
    ax.set_title(title)
    return to_svg(fig)


def forest(rows: pd.DataFrame, title: str) -> str | None:
    """Paired differences B - A with their 95% intervals, one line per measure (label column), and the zero line.
    A point is red where the row's verdict tells the models apart (its ``outcome``, as the table and page one count
    it: a disparity between groups too small to tell apart, or a measure at an operating point the persons cannot
    back, stays grey even when its interval misses zero; a review of the comparison)."""
    rows = rows.dropna(subset=["diff", "ci_low", "ci_high"])
    if rows.empty:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 0.28 * len(rows) + 1.0))
    y = np.arange(len(rows))[::-1]
    told = rows["outcome"].isin(["B higher", "A higher"]) & ~rows["setting"].astype(str).str.contains(";unsupported")
    ax.errorbar(rows["diff"], y, xerr=[rows["diff"] - rows["ci_low"], rows["ci_high"] - rows["diff"]], fmt="none",
                ecolor="#555", capsize=2, lw=1)
    ax.scatter(rows["diff"], y, c=np.where(told, "#b2182b", "#777777"), s=14, zorder=3)
    ax.axvline(0, color="#222", lw=0.8)
    ax.set_yticks(y, rows["label"], fontsize=6)
    ax.set_xlabel("difference (B − A), paired 95% interval", fontsize=7)
    ax.set_title(title, fontsize=8)
    return to_svg(fig)
