"""A claim of the conclusions and how it is worded: `Claim` (one sentence, its topic and verdict) and
`Writer` (a template in the report's language; a comparison's outcome with what backs it, OUTCOME's
templates). report/conclusions.py, report/attention_claims.py and report/classical_claims.py write
their claims through it, so a verdict reads the same everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .i18n import Words
from .stats import POWER, TestResult, Untested, family_level

# one comparison's outcome: its verdict, interval, p and the smallest difference the runs could detect
OUTCOME: dict[str, tuple[str, str]] = {
    "significant": (
        "{verdict}: {span} ({level}), {p}; differences smaller than {detectable} could not have been detected "
        "({power:.0%} power)",
        "{verdict}：{span}（{level}），{p}；小于 {detectable}的差异无法被检测到（{power:.0%} 功效）",
    ),
    "inconclusive": (
        "{verdict}: {span} ({level}); differences smaller than {detectable} could not have been detected "
        "({power:.0%} power)",
        "{verdict}：{span}（{level}）；小于 {detectable}的差异无法被检测到（{power:.0%} 功效）",
    ),
    "untested": ("{verdict}: {reason}", "{verdict}：{reason}"),
    "level": ("{level} interval", "{level} 区间"),
    "level_family": (
        "{level} interval, Bonferroni-adjusted over {k} comparisons",
        "{level} 区间，对 {k} 个比较做 Bonferroni 校正",
    ),
    "p_adjusted": ("adjusted {p}", "校正后 {p}"),
}


@dataclass
class Claim:
    topic: str  # caveat | best | baseline | factor | relation | lr | ablation | attention | warning
    subject: str  # the study, factor key, ablation name or warning the claim is about
    verdict: str  # significant | inconclusive | untested | info
    text: str
    under: str | None = None  # the subject of the claim this one details (shown nested under it)


class Writer:
    """Fills `templates` (and OUTCOME's) in the language `lang`, and words a comparison's outcome."""

    def __init__(self, lang: str, templates: Mapping[str, tuple[str, str]] | None = None):
        self.w = Words(lang)
        self.i = 0 if lang == "en" else 1
        self.templates = {**OUTCOME, **(templates or {})}

    @property
    def sep(self) -> str:
        return "、" if self.i else ", "

    def t(self, key: str, **values) -> str:
        return self.templates[key][self.i].format(**values)

    def level(self, test: TestResult) -> str:
        level = self.w.level(family_level(test.family))
        if test.family > 1:
            return self.t("level_family", level=level, k=test.family)
        return self.t("level", level=level)

    def outcome(self, test: TestResult | Untested, stage: str = "confirm") -> str:
        """A comparison's verdict with what backs it: interval, p and the smallest detectable
        difference; or why it was not tested."""
        w = self.w
        if isinstance(test, Untested):
            return self.t("untested", verdict=w.verdict("untested"), reason=w.reason(test.reason, stage))
        p = w.p(test.p) if test.family == 1 else self.t("p_adjusted", p=w.p(test.p))
        return self.t(
            test.verdict,
            verdict=w.verdict(test.verdict),
            span=w.span(test.low, test.high),
            level=self.level(test),
            p=p,
            detectable=w.pts(test.detectable, signed=False),
            power=POWER,
        )
