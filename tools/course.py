"""The course's shape: each graded function's points (from its tests' markers), level, difficulty,
importance and estimated time; the handouts' function tables; the one-quarter rule.

    python tools/course.py          # print points per task, level and function; rewrite the handouts' tables
    python tools/course.py --check  # the same without writing: exit 1 if a table is stale or a rule broken

Points come from ``@pytest.mark.points(n, function=..., level=...)`` (tests/conftest.py), hidden tests
included, so a handout's table is the grade that counts. The rest - difficulty, importance, minutes,
the order of work - is the instructors' judgement, written once below.
"""
from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import release  # noqa: E402  (tools/ is not a package)

REPO_ROOT = Path(__file__).resolve().parents[1]
MAX_SHARE = 0.25  # no function may carry more than a quarter of its task's points
NOTEBOOK = "notebook"  # the pseudo-function of tests/test_notebooks.py: the notebook runs top to bottom
TABLE = ("<!-- BEGIN FUNCTIONS TABLE (python tools/course.py) -->", "<!-- END FUNCTIONS TABLE -->")
_TASK = re.compile(r"task[123]")
ANSWER_KEY_MARK = "**Answer key.**"  # opens every key in instructors/<task>.md; never in the release


@dataclass(frozen=True)
class Exercise:
    function: str  # as in release.GRADED ("concept_objective.objective": the inner function)
    difficulty: int  # 1 (a few lines from a formula) .. 5 (a stateful algorithm with exact conventions)
    importance: int  # 1 (a detail) .. 5 (the idea the task is about)
    minutes: int  # core work, for a student who has read the task's README
    stretch_minutes: int = 0  # the stretch tests' extra work, if the function has any


# In the order of work: each builds on the ones before it.
COURSE: dict[str, list[Exercise]] = {
    "task1": [
        Exercise("distinct_n", 1, 2, 15), Exercise("repetition_rate", 1, 2, 15), Exercise("longest_repeated_span", 2, 2, 30),
        Exercise("top_k_filter", 2, 4, 30), Exercise("top_p_filter", 3, 5, 45), Exercise("min_p_filter", 2, 3, 30),
        Exercise("typical_filter", 3, 3, 45), Exercise("penalize_repetition", 2, 3, 30),
        Exercise("ban_repeated_ngrams", 3, 3, 45), Exercise("_one_token_at_a_time", 3, 5, 90),
        Exercise("greedy_search", 1, 4, 20), Exercise("sample", 2, 5, 45), Exercise("beam_search", 4, 4, 180, 180),
        Exercise(NOTEBOOK, 1, 5, 60),
    ],
    "task2": [
        Exercise("bradley_terry_loss", 1, 4, 20), Exercise("last_token_index", 2, 4, 30), Exercise("token_scores", 2, 4, 40),
        Exercise("selective_logps", 2, 4, 30), Exercise("token_logps", 3, 5, 60), Exercise("token_kl", 2, 3, 30),
        Exercise("dpo_loss", 2, 5, 45), Exercise("kl_estimate", 2, 4, 30), Exercise("token_rewards", 2, 4, 30),
        Exercise("compute_gae", 3, 5, 60), Exercise("masked_whiten", 2, 3, 20), Exercise("policy_loss", 3, 5, 45),
        Exercise("value_loss", 2, 4, 30), Exercise("ppo_update", 4, 5, 120), Exercise("group_advantages", 2, 4, 30),
        Exercise("grpo_loss", 4, 5, 90), Exercise("grpo_update", 3, 5, 60),
        Exercise("best_of_n_weights", 3, 3, 45), Exercise("calibration", 2, 3, 30), Exercise(NOTEBOOK, 1, 5, 90),
    ],
    "task3": [
        Exercise("usae_loss", 2, 5, 45), Exercise("usae_step", 2, 5, 45), Exercise("usae_epoch", 3, 5, 60),
        Exercise("firing_counts", 1, 3, 15),
        Exercise("firing_entropy", 2, 5, 30), Exercise("cofire_proportion", 3, 4, 45), Exercise("r2_global_mean", 1, 3, 15),
        Exercise("r2_variance_weighted", 2, 3, 20), Exercise("concept_energy", 2, 3, 30),
        Exercise("concept_objective.objective", 3, 4, 45), Exercise("maximise", 3, 4, 75), Exercise(NOTEBOOK, 1, 5, 60),
    ],
}


# One hint per function, shown collapsed under the notebooks' "your turn" cells (ARENA style: the idea,
# not the code).
HINTS: dict[str, str] = {
    'distinct_n': (
        'Count the distinct n-grams over all the texts of a prompt together, divided by the total number of '
        'n-grams; an empty set of n-grams gives 0, not a division by zero.'),
    'repetition_rate': (
        "The share of the text's n-grams that repeat an earlier one: for each distinct n-gram, its count "
        'minus one, summed, over the number of n-grams (0 for a text shorter than n).'),
    'longest_repeated_span': (
        'The largest n such that some n-gram of words occurs twice in the text (the occurrences may overlap): '
        'grow n while the text has fewer distinct n-grams than n-grams.'),
    'top_k_filter': (
        'Find the k-th largest value with `torch.topk(...).values[..., -1:]` and keep every logit >= it: ties '
        'at the boundary stay. k is raised to min_tokens_to_keep first.'),
    'top_p_filter': (
        'Sort ascending, take the cumulative softmax, and remove tokens while the cumulative mass is <= 1 - '
        'p: the token that crosses p stays. Scatter the mask back to the original order.'),
    'min_p_filter': (
        'The threshold is min_p times the largest probability; then make sure the min_tokens_to_keep most '
        'likely tokens survive.'),
    'typical_filter': (
        "Compute the entropy H and each token's |-log p - H|; sort by it, keep up to the first token where "
        'the cumulative probability reaches the mass. Tokens exactly as far from H as the last one kept also '
        'stay.'),
    'penalize_repetition': (
        '`torch.gather` the scores of the tokens in each row (from prompt_start on), divide the positive ones '
        'and multiply the negative ones by the penalty, and `scatter` them back.'),
    'ban_repeated_ngrams': (
        'For each row, the last n - 1 tokens are a prefix; every earlier n-gram that starts with that prefix '
        'bans its last token. Nothing is banned while the row is shorter than n.'),
    '_one_token_at_a_time': (
        'One forward pass over the whole prompt, then one token per step with the cache. Positions are '
        'counted over real tokens (`position_ids(mask)`), the mask grows by a column of ones each step, '
        "`choose` runs on every row, and a finished row's token is replaced by the pad id."),
    'greedy_search': (
        'A one-liner on top of `_one_token_at_a_time`: `choose` is the argmax.'),
    'sample': (
        "`choose` applies temperature, then the filters in generate's order, then one "
        '`torch.multinomial(softmax, 1)` for every row.'),
    'beam_search': (
        "Work the two-step case of its test by hand first. Then: log-softmax, add each beam's running score, "
        'take the best 2 * num_beams candidates over beams x vocabulary, finish the EOS candidates among the '
        'top num_beams, continue with the best num_beams unfinished ones, reorder the cache. The docstring '
        "lists generate's bookkeeping for the stretch tests."),
    'bradley_terry_loss': (
        '`-logsigmoid(r_c - r_r - margin).mean()`: logsigmoid is stable where log(sigmoid(x)) underflows.'),
    'last_token_index': (
        'Read the attention mask, not the pad id (pad == eos in SmolLM2): the index of the last 1 in each '
        'row, for right and left padding alike.'),
    'token_scores': (
        "The backbone's last hidden states through the score head, one scalar per position; pass the position "
        'ids so left-padded rows see real positions.'),
    'selective_logps': (
        'log p(token) = logit(token) - logsumexp(logits): gather one logit per position instead of '
        'materialising a full log-softmax.'),
    'token_logps': (
        'Token t is predicted by the logits at position t - 1: shift by one, divide by the temperature, then '
        '`selective_logps`; position 0 has no prediction.'),
    'token_kl': (
        'The exact KL over the vocabulary at each position: sum_v p(v) (log p(v) - log q(v)) from both '
        "models' log-softmaxes."),
    'kl_estimate': (
        'k1 = log pi - log pi_ref; k3 = exp(-k1) - 1 + k1 (Schulman): one is unbiased and can be negative, '
        'the other is >= 0.'),
    'dpo_loss': (
        'The implicit rewards are beta * (log pi - log pi_ref) of each response; the loss is -logsigmoid of '
        'their difference. At step 0 the policy is the reference, so the loss is ln 2.'),
    'token_rewards': (
        "Each completion token gets -kl_coef * KL_t; the last completion token (the mask's last 1) also gets "
        'the score.'),
    'compute_gae': (
        'Walk backwards: delta_t = r_t + gamma V_{t+1} - V_t, A_t = delta_t + gamma lambda A_{t+1}, where '
        "'t+1' is the next unmasked position; returns = A + V."),
    'masked_whiten': (
        'Mean and Bessel-corrected variance over the masked entries only; shift_mean=False adds the mean back '
        "(TRL's convention)."),
    'policy_loss': (
        'ratio = exp(logps - old_logps); the loss is the mean over completion tokens of max(-A ratio, -A '
        'clip(ratio, 1 - eps, 1 + eps)); the clip fraction counts tokens where the clipped term is the '
        'larger.'),
    'value_loss': (
        'Clip the new values to within clip_range_value of the old ones; take the larger of the two squared '
        'errors to the returns, times 0.5, averaged over completion tokens.'),
    'ppo_update': (
        "Follow the docstring's four steps in order: everything the clipped losses compare against is "
        'computed once, frozen, before the first minibatch; then epochs x minibatches, one optimizer step '
        'each.'),
    'group_advantages': (
        "Reshape the rewards to [prompts, group_size]: subtract each group's mean; 'group' divides by the "
        "group's standard deviation + eps, 'batch' by the whole batch's, 'none' by nothing."),
    'grpo_loss': (
        "PPO's clipped surrogate per token with the sequence's advantage, plus beta * k3 if beta > 0; the "
        'four loss_types differ only in how the token losses are summed and normalised.'),
    'grpo_update': (
        'Advantages from the group scores, frozen reference (and old) log-probs, then `iterations` optimizer '
        'steps on grpo_loss; with one iteration the old log-probs are the current ones detached.'),
    'best_of_n_weights': (
        'Sort the N pool scores; the probability that rank i (of N) is the best of n draws without '
        'replacement is C(i, n - 1) / C(N, n), with i counted from 0 at the lowest.'),
    'calibration': (
        'Confidence is sigmoid(|r_c - r_r|), the probability of the side the model picks; correct means r_c > '
        "r_r. Bins of width 0.5 / bins over [0.5, 1]; ECE sums, over the bins, each bin's share of pairs "
        'times |accuracy - confidence|.'),
    'usae_loss': (
        "Encode the source model's batch once; decode those codes with every model's dictionary and sum each "
        "model's mean squared error (the cross terms times cross_weight)."),
    'usae_step': (
        "Sum usae_loss over the sources, step only the sources' parameters with `optimizer_step`, and leave "
        'no .grad behind.'),
    'usae_epoch': (
        'One `torch.randperm(N, generator=generator)` per epoch split into batches; skip a batch of one row; '
        "the paper's schedule draws one source with `picker.choice`, the course's uses every model."),
    'firing_counts': (
        'fires means z > threshold (0.1, strictly): count, per model and concept, the images where it fires.'),
    'firing_entropy': (
        'p_i = counts_i / sum_j counts_j over models, entropy in nats divided by log M; a concept that never '
        'fires has no distribution: NaN.'),
    'cofire_proportion': (
        'For model i and concept k: of the images where i fires k, the share where every model fires k; NaN '
        'where i never fires k.'),
    'r2_global_mean': (
        "1 - SSE / (sum of squares around one scalar mean of every entry): overcomplete's r2_score."),
    'r2_variance_weighted': (
        "1 - SSE / (sum of squares around each feature's own mean): sklearn's variance_weighted R²."),
    'concept_energy': (
        "||E[z_k] D_k||^2: the concept's mean code times its atom, squared norm."),
    'concept_objective.objective': (
        "Run the network with gradients (the notebook's feature extraction runs under no_grad and detaches - "
        "do not reuse it), normalise the hooked features, and read the concept's pre-TopK code."),
    'maximise': (
        "Follow the docstring's order exactly (a seeded run is compared with the reference): the logged "
        'objective under no_grad, then the copies, the noise, the clamp and one step.'),
}

# Where each function is met: a "your turn" cell goes right after the section heading that starts so.
YOUR_TURN: dict[str, list[tuple[str, list[str]]]] = {
    "task1": [("## 2.", ["_one_token_at_a_time", "greedy_search"]), ("## 3.", ["penalize_repetition", "ban_repeated_ngrams"]),
              ("## 4.", ["beam_search"]), ("## 5.", ["top_k_filter", "top_p_filter", "min_p_filter", "typical_filter", "sample"]),
              ("## 7.", ["distinct_n", "repetition_rate", "longest_repeated_span"])],
    "task2": [("## 2.", ["bradley_terry_loss", "last_token_index", "token_scores"]),
              ("## 3.", ["selective_logps", "token_logps", "token_kl", "dpo_loss"]), ("## 5.", ["best_of_n_weights"]),
              ("## 6.", ["kl_estimate", "token_rewards", "compute_gae", "masked_whiten", "policy_loss", "value_loss",
                         "ppo_update"]),
              ("## 7.", ["group_advantages", "grpo_loss", "grpo_update"]), ("## 10.", ["calibration"])],
    "task3": [("## 2.", ["usae_loss", "usae_step", "usae_epoch"]),
              ("## 4.", ["firing_counts", "firing_entropy", "cofire_proportion", "r2_global_mean", "r2_variance_weighted"]),
              ("## 5.", ["concept_energy", "concept_objective.objective", "maximise"])],
}

def task_of(nodeid: str) -> str | None:
    """The task a graded test belongs to: in its file name, or a notebook test's parameter."""
    match = _TASK.search(nodeid)
    return match.group(0) if match else None


def files_of(task: str, graded: dict[str, list[str]] = release.GRADED) -> dict[str, str]:
    """{function: the file a student writes it in} for ``task``."""
    return {name: path for path, names in graded.items() if path.startswith(task + "/") for name in names}


def points(rows: list[dict]) -> dict[str, dict[str, dict[str, float]]]:
    """{task: {function: {"core": points, "stretch": points}}} of the graded rows (grades.json's "tests")."""
    table: dict[str, dict[str, dict[str, float]]] = {}
    for row in rows:
        task = task_of(row["nodeid"])
        if task is None:
            continue
        levels = table.setdefault(task, {}).setdefault(row["function"], {"core": 0.0, "stretch": 0.0})
        levels[row["level"]] += row["points"]
    return table


def problems(rows: list[dict], course: dict[str, list[Exercise]] = COURSE,
             graded: dict[str, list[str]] = release.GRADED, root: Path = REPO_ROOT) -> list[str]:
    """What breaks the course's rules in the tasks ``root`` has: a task test without a graded function,
    a graded function without a test or missing from COURSE, a function over a quarter of its task's
    points."""
    found = []
    course = {task: exercises for task, exercises in course.items() if (root / task).is_dir()}
    for row in rows:
        if task_of(row["nodeid"]) is not None and row.get("function") is None:
            found.append(f"{row['nodeid']}: name its graded function, @pytest.mark.points(n, function=...)")
    by_task = points(rows)
    for task, exercises in course.items():
        listed = [e.function for e in exercises]
        expected = set(files_of(task, graded)) | {NOTEBOOK}
        found += [f"{task}: {name} is graded (release.GRADED) but not in tools/course.py's COURSE"
                  for name in sorted(expected - set(listed))]
        found += [f"{task}: COURSE lists {name}, which is not a graded function" for name in sorted(set(listed) - expected)]
        tested = by_task.get(task, {})
        found += [f"{task}: {name} has no graded test" for name in listed if name in expected and name not in tested]
        found += [f"{task}: tests name {name}, which is not one of its graded functions"
                  for name in sorted(set(tested) - expected)]
        total = sum(sum(levels.values()) for levels in tested.values())
        for name, levels in tested.items():
            if sum(levels.values()) > MAX_SHARE * total:
                found.append(f"{task}: {name} carries {sum(levels.values()):g} of {total:g} points, over a quarter")
    return found


def summary(rows: list[dict]) -> str:
    """Points per task and per level, and each task's heaviest function (release check's printout)."""
    lines = []
    for task, functions in sorted(points(rows).items()):
        core = sum(levels["core"] for levels in functions.values())
        stretch = sum(levels["stretch"] for levels in functions.values())
        name, levels = max(functions.items(), key=lambda item: sum(item[1].values()))
        lines.append(f"{task}: {core + stretch:g} points: core {core:g}, stretch {stretch:g}; the heaviest function "
                     f"{name} carries {sum(levels.values()):g} ({sum(levels.values()) / (core + stretch):.1%}, at most "
                     f"{MAX_SHARE:.0%})")
    return "\n".join(lines)


def release_problems(dest: Path, root: Path = REPO_ROOT) -> list[str]:
    """What a built release must hold: for each task ``root`` has, its handout and its notebook's answer
    cells (present and empty); and nothing of the instructors' key."""
    import answers
    found = [f"the release holds {path.relative_to(dest)}, an instructors-only file"
             for prefix in release.INSTRUCTORS_ONLY if (path := dest / prefix.rstrip("/")).exists()]
    for task in (task for task in COURSE if (root / task).is_dir()):
        if not handout(dest, task).is_file():
            found.append(f"the release has no {task}/HANDOUT.md")
        notebook = dest / task / f"{task}.ipynb"
        answer_cells = answers.answer_cells(notebook) if notebook.is_file() else []
        if not 8 <= len(answer_cells) <= 12:
            found.append(f"{task}/{task}.ipynb has {len(answer_cells)} answer cells; a task has 8 to 12 written questions")
        found += [f"{task}/{task}.ipynb: an answer cell is not empty in the release ({text[:40]!r})"
                  for text in answer_cells if text.strip() != answers.PLACEHOLDER]
    for path in dest.rglob("*"):
        if path.is_file() and path.suffix in (".md", ".ipynb") and ANSWER_KEY_MARK in path.read_text():
            found.append(f"{path.relative_to(dest)} holds answer-key text ({ANSWER_KEY_MARK!r})")
    return found


def _dots(n: int) -> str:
    return "●" * n + "○" * (5 - n)


def _hours(minutes: int) -> str:
    return f"{minutes} min" if minutes < 60 else f"{minutes / 60:g} h"


def check_command(task: str, function: str) -> str:
    if function == NOTEBOOK:
        return f"`pytest tests/test_notebooks.py -k {task}`"
    return f"`pytest -k grades_{function.split('.')[0]}`"


def table(task: str, rows: list[dict], course: dict[str, list[Exercise]] = COURSE) -> str:
    """The handout's markdown table of ``task``'s functions, then its totals."""
    tested, files = points(rows).get(task, {}), files_of(task)
    lines = ["| # | function | file | core points | stretch points | difficulty | importance | time | check it |",
             "|---|---|---|---|---|---|---|---|---|"]
    for number, e in enumerate(course[task], 1):
        levels = tested.get(e.function, {"core": 0.0, "stretch": 0.0})
        where = f"`{files[e.function]}`" if e.function in files else f"`{task}/{task}.ipynb`"
        name = "the notebook runs top to bottom" if e.function == NOTEBOOK else f"`{e.function}`"
        time = _hours(e.minutes) + (f" + {_hours(e.stretch_minutes)} stretch" if e.stretch_minutes else "")
        stretch = f"{levels['stretch']:g}" if levels["stretch"] else "-"
        lines.append(f"| {number} | {name} | {where} | {levels['core']:g} | {stretch} | "
                     f"{_dots(e.difficulty)} | {_dots(e.importance)} | {time} | {check_command(task, e.function)} |")
    core = sum(levels["core"] for levels in tested.values())
    stretch = sum(levels["stretch"] for levels in tested.values())
    minutes = sum(e.minutes for e in course[task])
    extra = sum(e.stretch_minutes for e in course[task])
    lines += ["", f"Autograded: **{core + stretch:g} points** ({core:g} core, {stretch:g} stretch), hidden tests "
                  f"included. Estimated time: **about {minutes / 60:.0f} h** of core work"
                  + (f", {_hours(extra)} more for the stretch tests." if extra else ".")]
    return "\n".join(lines)


def render(text: str, task: str, rows: list[dict]) -> str:
    """``text`` (a handout) with its table between the TABLE markers replaced."""
    start, end = text.find(TABLE[0]), text.find(TABLE[1])
    if start < 0 or end < start:
        raise ValueError(f"the {task} handout has no {TABLE[0]} ... {TABLE[1]} block")
    return text[: start + len(TABLE[0])] + "\n" + table(task, rows) + "\n" + text[end:]


def handout(root: Path, task: str) -> Path:
    return root / task / "HANDOUT.md"


def your_turn(task: str, functions: list[str]) -> str:
    """The markdown of a notebook's "your turn" cell: the functions this section runs, where to write
    each, the command that checks it, and a collapsed hint per function."""
    files = files_of(task)
    lines = ["**Your turn.** This section runs functions you write (in the student release; the points and time of each "
             "are in [`HANDOUT.md`](HANDOUT.md)). Write them, check each with its command (from the repository's root "
             "folder), then run the cells below.", ""]
    lines += [f"- `{name}` in `{files[name]}`: {check_command(task, name)}" for name in functions]
    for name in functions:
        lines += ["", f"<details><summary>Hint: <code>{name}</code></summary>", "", HINTS[name], "", "</details>"]
    return "\n".join(lines)


def render_notebook(notebook: dict, task: str) -> dict:
    """``notebook`` (nbformat's JSON) with a current "your turn" cell right after each YOUR_TURN heading:
    an existing one (metadata ``{"pa5": {"your_turn": heading}}``) is rewritten, a missing one inserted."""
    import nbformat
    cells = [c for c in notebook["cells"] if "your_turn" not in c.get("metadata", {}).get("pa5", {})]
    existing = {c["metadata"]["pa5"]["your_turn"]: c for c in notebook["cells"]
                if "your_turn" in c.get("metadata", {}).get("pa5", {})}
    for heading, functions in YOUR_TURN[task]:
        found = [i for i, c in enumerate(cells) if c["cell_type"] == "markdown" and "".join(c["source"]).startswith(heading)]
        if len(found) != 1:
            raise ValueError(f"{task}.ipynb: {len(found)} markdown cells start with {heading!r}; YOUR_TURN needs one")
        cell = dict(existing[heading]) if heading in existing else nbformat.v4.new_markdown_cell(
            metadata={"pa5": {"your_turn": heading}})
        cell["source"] = your_turn(task, functions)
        cells.insert(found[0] + 1, cell)
    return {**notebook, "cells": cells}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a table is stale or a rule broken")
    args = parser.parse_args(argv)
    rows = release.graded_rows(REPO_ROOT)
    print(summary(rows))
    found = problems(rows)
    import nbformat
    for task in COURSE:
        path = handout(REPO_ROOT, task)
        notebook = REPO_ROOT / task / f"{task}.ipynb"
        current = nbformat.reads(notebook.read_text(), as_version=4)
        for target, text, new in ((path, path.read_text(), lambda t: render(t, task, rows)),
                                  (notebook, nbformat.writes(current) + "\n",
                                   lambda t: nbformat.writes(nbformat.from_dict(render_notebook(current, task))) + "\n")):
            updated = new(text)
            if updated == text:
                continue
            if args.check:
                found.append(f"{target.relative_to(REPO_ROOT)} is stale - run python tools/course.py")
            else:
                target.write_text(updated)
                print(f"updated {target.relative_to(REPO_ROOT)}")
    for problem in found:
        print(f"problem: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
