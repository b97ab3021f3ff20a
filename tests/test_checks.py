"""``course_utils.checks``: computed verdicts, chance from the data, paired intervals, room to fail."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
import torch

from course_utils import checks


def _check(**overrides):
    args = dict(
        article="002",
        quote="c is passed up",
        rule="holds if the next layer's output changes when c is perturbed",
        holds=[False, False, False],
        control="a layer fed c on purpose",
        control_holds=[True, True, True],
        finding="max change 0.0 at every seed; with c fed in: 0.41-0.52",
    )
    return checks.claim_check(**(args | overrides))


def test_claim_check_computes_the_verdict_from_the_rule(capsys):
    result = _check()
    out = capsys.readouterr().out
    assert 'Claim (article 002): "c is passed up"' in out and "\nVerdict: FALSE\n" in out
    assert "Rule: holds if" in out
    assert (
        "Control (should come out the other way): a layer fed c on purpose: the rule holds" in out
    )
    assert "(the same at 3 seeds)" in out and result.verdict == "FALSE"
    assert out.rstrip().endswith("so it could have held.")
    assert _check(holds=True, control_holds=False).verdict == "TRUE"


@pytest.mark.parametrize(
    ("overrides", "verdict", "sentence"),
    [
        ({"holds": True, "control_holds": False}, "TRUE", "the article is right here"),
        ({}, "FALSE", "the article is wrong here"),
        (
            {"holds": {"h": True, "c": False}, "control_holds": {"h": False, "c": True}},
            "PARTLY TRUE",
            "partly right: h holds; c fails",
        ),
        ({"holds": [True, False, True]}, "NOT SUPPORTED", "the seeds disagree"),
        ({"control_holds": [False] * 3}, "INCONCLUSIVE", "cannot tell a true claim"),
        (
            {
                "testable": [True, False, True],
                "why_untestable": "at the ceiling",
                "control_holds": [False] * 3,
            },
            "NOT TESTABLE",
            "no room for both outcomes",
        ),
    ],
)
def test_every_verdict_ends_in_one_plain_sentence(overrides, verdict, sentence):
    check = _check(**overrides)
    assert check.verdict == verdict
    last = str(check).split("\nVerdict: ")[1].splitlines()[1]
    assert last.startswith("In short: ")
    assert sentence in " ".join(str(check).split("In short: ")[1].split())


def test_outcomes_name_disagreeing_seeds_and_refuse_uneven_seed_counts():
    untestable = _check(
        holds=[True, False, True], testable=[True, False, True], why_untestable="at the ceiling"
    )
    assert untestable.verdict == "NOT TESTABLE" and "(the seeds disagree)" in str(untestable)
    parts = _check(
        holds={"a": True, "b": [True, False, True]}, control_holds={"a": False, "b": False}
    )
    assert parts.verdict == "NOT SUPPORTED" and parts.in_short.endswith("neither answer for b.")
    inconclusive = _check(control_holds=[False] * 3)
    assert "(the same at 3 seeds; the control did not come out the other way)" in str(inconclusive)
    with pytest.raises(ValueError, match="same 3 seeds"):
        _check(holds={"a": [True] * 3, "b": [True] * 2}, control_holds={"a": False, "b": False})
    assert _check(control_holds=True).verdict == "FALSE"  # one value: a seed-independent fact


def test_the_article_is_three_digits():
    with pytest.raises(ValueError, match="three digits"):
        _check(article="2")


def test_claim_check_parts_seeds_and_controls():
    parts = dict(holds={"h": True, "c": False}, control_holds={"h": False, "c": True})
    assert _check(**parts).verdict == "PARTLY TRUE"
    # seeds that disagree: the claim is not supported, whatever the control says
    assert _check(holds=[True, False, True]).verdict == "NOT SUPPORTED"
    # a control that gives the same outcome cannot tell the cases apart
    assert _check(control_holds=[False, False, False]).verdict == "INCONCLUSIVE"
    assert _check(control_holds=[True, False, True]).verdict == "INCONCLUSIVE"
    half = dict(holds={"h": True, "c": False}, control_holds={"h": False, "c": False})
    assert _check(**half).verdict == "INCONCLUSIVE"
    with pytest.raises(ValueError, match="same parts"):
        _check(holds={"h": True}, control_holds={"c": False})
    with pytest.raises(ValueError, match="non-empty rule"):
        _check(rule=" ")
    with pytest.raises(ValueError, match="one bool per seed"):
        _check(holds=[])


def test_claim_check_numbers_are_blanked_for_nbval():

    cfg = (Path(__file__).resolve().parents[1] / "notebooks" / "nbval_sanitize.cfg").read_text()
    (regex, replace), *_ = re.findall("^regex: (.*)$\n^replace: (.*)$", cfg, flags=re.MULTILINE)
    one = str(_check(finding="loss 0.3512 " * 30))
    other = str(_check(finding="loss 0.3498 " * 29))
    assert one != other and re.sub(regex, replace, one) == re.sub(regex, replace, other)
    assert "Verdict: FALSE" in re.sub(regex, replace, one)


def test_seed_helpers():
    assert checks.seeds_from(2) == [2, 3, 4]
    assert checks.at_seeds(lambda s: s * 10, 1) == [10, 20, 30]
    assert checks.span([0.401, 0.36, 0.38]) == "0.36-0.40"
    assert checks.span([0.5, 0.5]) == "0.50"
    with pytest.raises(ValueError, match="non-negative"):
        checks.seeds_from(-1)


def test_compare_reports_exact_close_and_shape_errors(capsys):
    a = torch.ones(3)
    assert checks.compare("same", a, a.clone())
    assert "exact: True" in capsys.readouterr().out
    assert not checks.compare("far", a, a + 1e-3, atol=1e-5)
    assert "max diff: 1.00e-03" in capsys.readouterr().out
    with pytest.raises(ValueError, match="shapes differ"):
        checks.compare("bad", a, torch.ones(4))


def _true_check(**overrides):
    """A check whose claim holds and whose control fails at 3 seeds (verdict TRUE)."""
    return _check(**({"holds": [True] * 3, "control_holds": [False] * 3} | overrides))


def test_majority_rate_is_the_share_of_the_commonest_label():
    assert checks.majority_rate([0, 1, 1, 1]) == 0.75
    assert checks.majority_rate(torch.tensor([[2, 2], [0, 1]])) == 0.5
    with pytest.raises(ValueError, match="at least one label"):
        checks.majority_rate([])
    with pytest.raises(ValueError, match="class labels"):
        checks.majority_rate(torch.tensor([0.2, 0.8]))


def test_paired_bootstrap_sees_a_real_difference_and_not_noise():
    gen = torch.Generator().manual_seed(0)
    base = torch.rand(400, generator=gen)
    better = base + 0.05 + 0.05 * torch.randn(400, generator=gen)
    same = base + 0.05 * torch.randn(400, generator=gen)
    real = checks.paired_bootstrap(better, base)
    assert real.above_zero and not real.below_zero and real.n == 400
    assert real.low < real.mean < real.high and abs(real.mean - 0.05) < 0.01
    noise = checks.paired_bootstrap(same, base)
    assert noise.low < 0 < noise.high and not noise.above_zero
    assert "n=400" in str(real) and "95 % interval" in str(real)


def test_paired_bootstrap_pairs_items_unlike_two_independent_means():
    # every item 0.01 better, items very different: paired, the gain is certain
    gen = torch.Generator().manual_seed(1)
    hard = 10 * torch.rand(50, generator=gen)
    assert checks.paired_bootstrap(hard + 0.01, hard).low > 0


def test_paired_bootstrap_is_repeatable_and_leaves_the_global_rng_alone():
    torch.manual_seed(5)
    random.seed(5)
    before = (torch.random.get_rng_state(), random.getstate())
    a, b = torch.arange(20.0), torch.arange(20.0).flip(0)
    assert checks.paired_bootstrap(a, b) == checks.paired_bootstrap(a, b)
    assert torch.equal(before[0], torch.random.get_rng_state()) and before[1] == random.getstate()


def test_paired_bootstrap_refuses_unpaired_or_tiny_input():
    with pytest.raises(ValueError, match="same test set"):
        checks.paired_bootstrap([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="at least 2"):
        checks.paired_bootstrap([1.0], [0.0])
    with pytest.raises(ValueError, match="level"):
        checks.paired_bootstrap([1.0, 2.0], [0.0, 1.0], level=95)


def test_improves_is_the_rival_error_minus_the_model_error():
    gen = torch.Generator().manual_seed(2)
    rival = torch.rand(300, generator=gen)
    ok, diff = checks.improves(rival * 0.5, rival)
    assert ok and diff.mean > 0
    ok, diff = checks.improves(rival, rival * 0.5)  # the model is worse: the rule fails
    assert not ok and diff.below_zero
    ok, _ = checks.improves(rival + 0.01 * torch.randn(300, generator=gen), rival)
    assert not ok  # noise is not an improvement
    assert "above 0" in checks.IMPROVES_RULE


def test_testable_false_gives_not_testable_and_says_why(capsys):
    # the rival at the ceiling passes the rule as well: the control cannot come out the other way
    check = _true_check(
        control_holds=[True] * 3,
        testable=[True, False, True],
        why_untestable="the rival scores 0.998",
    )
    out = capsys.readouterr().out
    assert check.verdict == "NOT TESTABLE"
    assert "Testable: no at 1 of 3 seeds: the rival scores 0.998" in out
    assert "\nVerdict: NOT TESTABLE\n" in out
    check = _true_check(testable=[True] * 3)
    assert check.verdict == "TRUE" and "Testable: yes" in capsys.readouterr().out
    with pytest.raises(ValueError, match="why_untestable"):
        _true_check(testable=False)
    assert "NOT TESTABLE" in checks.VERDICTS


def test_not_testable_cannot_hide_a_result_the_control_could_decide():
    # the control flipped: the task had room, so "no room" would launder the verdict
    with pytest.raises(ValueError, match="the control came out the other way"):
        _true_check(testable=[False] * 3, why_untestable="says who")
    with pytest.raises(ValueError, match="one per seed"):
        _true_check(control_holds=[True] * 3, testable=[False, False], why_untestable="ceiling")


def test_outcomes_accept_tensors_of_bools():
    check = _true_check(
        holds=torch.tensor([True, True, True]), control_holds=torch.tensor([False] * 3)
    )
    assert check.verdict == "TRUE" and check.n_seeds == 3


def test_improves_needs_enough_items_finite_scores_and_mcnemar_for_few_discordant_items():
    with pytest.raises(ValueError, match="at least 30"):
        checks.improves([0.1] * 3, [1.0] * 3)
    with pytest.raises(ValueError, match="NaN or infinite"):
        checks.paired_bootstrap([float("nan"), 1.0], [0.0, 1.0])
    # 100 items, the rival wrong on 4 the model gets right, none the other way: p = 1/16, not shown
    model, rival = torch.zeros(100), torch.zeros(100)
    rival[:4] = 1
    assert checks.mcnemar_p(model, rival) == pytest.approx(1 / 16)
    assert not checks.improves(model, rival)[0]
    rival[:8] = 1  # 8 to 0: p = 1/256, shown
    assert checks.improves(model, rival)[0]


def test_noise_floor_from_twin_runs_raises_the_bar():
    gen = torch.Generator().manual_seed(3)
    rival = torch.rand(400, generator=gen)
    twin = (
        rival + 0.02 + 0.01 * torch.randn(400, generator=gen)
    )  # same model, other init: 0.02 apart
    model = rival - 0.01  # 0.01 better: beyond test noise, inside run-to-run noise
    floor = checks.run_to_run_gap(rival, twin)
    assert 0.015 < floor < 0.03
    assert checks.improves(model, rival)[0]
    assert not checks.improves(model, rival, noise_floor=floor)[0]
    assert checks.improves(rival - 0.1, rival, noise_floor=floor)[0]
    with pytest.raises(ValueError, match="noise_floor"):
        checks.improves(model, rival, noise_floor=-1.0)
