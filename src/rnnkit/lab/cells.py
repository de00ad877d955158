"""What one recurrent unit does over a text (`rnnkit lab cells`; Karpathy, Johnson & Fei-Fei 2015).

Key: T tokens, H hidden size (units per direction), L layers.

A trained bundle's recurrent stack is run by the numpy engine over a text,
one token at a time (characters for a charlm bundle; words for classify,
sentiment and wordlm bundles), and one unit's activation is read at every
step:

    lstm      tanh(c_t), the cell state squashed into (-1, 1), as Karpathy et al. show it
              (c_t itself is unbounded; h_t = o_t * tanh(c_t) also carries the output gate)
    gru, rnn  h_t, the hidden state, already in (-1, 1)

`activations` gives every unit's value at every step (T, H), so `correlations`
can rank the units by how well they follow a simple feature of the text
(inside quotes, the position in the line, after a negation, the position in
the text). `html_page` colours each token's background by the chosen unit's
value (blue negative, red positive: a self-contained page), and `plot` draws
the same grid as a PNG.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np

from rnnkit.errors import InputError
from rnnkit.lab import report

TASKS = ("charlm", "classify", "sentiment", "wordlm")
NEGATIONS = frozenset({"not", "no", "never", "nothing", "nobody", "none", "hardly", "without"})


@dataclass(frozen=True)
class Activations:
    """One text through one layer (and direction) of a bundle's recurrent stack.

    tokens: the T tokens as shown (characters or words); level: "char" or "word"; values (T, H) float64:
    every unit's activation at every step; kind: "tanh(c)" (lstm) or "h"; cell, layer, reverse: which
    layer was read; unknown: how many tokens the vocabulary lacks (read as <unk>).
    """

    tokens: list[str]
    level: str
    values: np.ndarray
    kind: str
    cell: str
    layer: int
    reverse: bool
    unknown: int


def activations(bundle, text: str, layer: int | None = None, reverse: bool = False,
                max_tokens: int = 5000) -> Activations:
    """Run `text` through `bundle`'s recurrent layers (numpy engine); read layer `layer` (default: the top one),
    its reverse direction if `reverse`. InputError, naming the fix, for a bundle or text it cannot read."""
    from rnnkit.numpy_engine import build_model

    c = bundle.config
    if bundle.task not in TASKS:
        raise InputError(f"{bundle.path} holds a {bundle.task} model; rnnkit lab cells reads the recurrent units of "
                         f"{', '.join(TASKS)} bundles")
    if c.architecture not in ("many_to_one", "many_to_many"):
        raise InputError(f"{bundle.path} holds a {c.architecture} model ({c.describe()}), which has no recurrent "
                         "units to show; give a bundle of a recurrent model")
    layer = c.num_layers - 1 if layer is None else layer
    if not 0 <= layer < c.num_layers:
        raise InputError(f"--layer must be in 0..{c.num_layers - 1} (the model has {c.num_layers} layer(s)); "
                         f"got {layer}")
    if reverse and not c.bidirectional:
        raise InputError("--reverse reads the reverse direction of a bidirectional model; this one has one "
                         "direction: leave out --reverse")
    tokens, ids, unknown, level = _encode(bundle, text, max_tokens)
    model = build_model(c, {k: v.astype(np.float64) for k, v in bundle.tensors.items()})
    model.rnn.forward(model.embedding.forward(ids[None, :]))  # (T, 1, E) through every layer
    states = model.rnn.layers[layer][int(reverse)].step_states()
    value = np.tanh(states[1]) if c.cell == "lstm" else states[0]  # (T, 1, H)
    value = value[:, 0]
    if reverse:  # the reverse direction ran from the last token to the first
        value = value[::-1]
    return Activations(tokens, level, np.array(value, dtype=np.float64), "tanh(c)" if c.cell == "lstm" else "h",
                       c.cell, layer, reverse, unknown)


def _encode(bundle, text: str, max_tokens: int) -> tuple[list[str], np.ndarray, int, str]:
    """(tokens as shown, ids (T,), unknown count, level) of `text` in the bundle's vocabulary."""
    if not isinstance(text, str) or not text.strip():
        raise InputError("the text is empty; give some text with --text (or --file)")
    if bundle.task == "charlm":
        from rnnkit.data.text import UNK_ID, CharVocab

        vocab = CharVocab.from_json(bundle.vocab)
        tokens = list(text[:max_tokens])
        ids = vocab.encode("".join(tokens))
        return tokens, ids, int(np.sum(ids == UNK_ID)), "char"
    from rnnkit.data.vocab import UNK_ID, Vocab, tokenize

    vocab = Vocab.from_json(bundle.vocab)
    tokens = tokenize(text)[:max_tokens]
    if not tokens:
        raise InputError("the text has no words; give some text with --text (or --file)")
    ids = np.asarray(vocab.encode(tokens), dtype=np.int64)
    return tokens, ids, int(np.sum(ids == UNK_ID)), "word"


# --------------------------------------------------------------------------- features and correlations


def features(tokens: list[str], level: str) -> dict[str, np.ndarray]:
    """Simple features of the text, one value per token, for `correlations`.

    char: "inside quotes" (1 between a pair of double quotes), "position in the line" (characters since
    the last newline), "inside parentheses"; word: "after a negation" (1 from a not/no/never/n't word up to
    the next punctuation), "position in the text".
    """
    T = len(tokens)
    if level == "char":
        quoted, line, parens = np.zeros(T), np.zeros(T), np.zeros(T)
        inside, column, depth = False, 0, 0
        for t, ch in enumerate(tokens):
            if ch == '"':
                inside = not inside
            depth += ch == "("
            quoted[t], line[t], parens[t] = inside, column, depth > 0
            depth = max(0, depth - (ch == ")"))
            column = 0 if ch == "\n" else column + 1
        return {"inside quotes": quoted, "position in the line": line, "inside parentheses": parens}
    negated, scope = np.zeros(T), False
    for t, word in enumerate(tokens):
        if not any(ch.isalnum() for ch in word):
            scope = False  # punctuation ends a negation's scope
        elif word in NEGATIONS or word.endswith("n't"):
            scope = True
            continue
        negated[t] = scope
    return {"after a negation": negated, "position in the text": np.arange(T, dtype=np.float64)}


def correlations(result: Activations, top: int) -> dict[str, list[dict]]:
    """Feature -> the `top` units whose activation correlates most with it (Pearson r, largest |r| first):
    [{"unit", "r"}]. A feature that does not vary over this text (no quotes in it) gets an empty list."""
    ranked = {}
    values = result.values - result.values.mean(axis=0)
    scale = np.sqrt((values ** 2).sum(axis=0))
    for name, feature in features(result.tokens, result.level).items():
        f = feature - feature.mean()
        norm = np.sqrt((f ** 2).sum())
        if norm == 0:
            ranked[name] = []
            continue
        r = np.where(scale > 0, (values * f[:, None]).sum(axis=0) / np.maximum(scale * norm, 1e-300), 0.0)
        order = np.argsort(-np.abs(r), kind="stable")[:top]
        ranked[name] = [{"unit": int(u), "r": round(float(r[u]), 4)} for u in order]
    return ranked


# --------------------------------------------------------------------------- the page and the picture


def colour(value: float) -> str:
    """A CSS colour for a value in [-1, 1]: white at 0, blue towards -1, red towards +1."""
    v = float(np.clip(value, -1.0, 1.0))
    fade = int(round(255 * (1 - abs(v))))
    return f"rgb(255,{fade},{fade})" if v > 0 else f"rgb({fade},{fade},255)"


def html_page(result: Activations, unit: int, title: str) -> str:
    """A self-contained HTML page: every token with its background coloured by `unit`'s value (hover: the value)."""
    values = result.values[:, unit]
    spans = []
    for token, v in zip(result.tokens, values):
        shown = html.escape(token) if token != "\n" else "&#8629;<br>"
        spans.append(f'<span style="background:{colour(v)}" title="{v:+.3f}">{shown}</span>')
    joiner = "" if result.level == "char" else " "
    what = ("tanh(c), the LSTM's cell state squashed into (-1, 1)" if result.kind == "tanh(c)"
            else f"h, the {result.cell.upper()}'s hidden state")
    legend = "".join(f'<span style="background:{colour(v)}">{v:+.1f}</span>' for v in np.linspace(-1, 1, 9))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 60em; }}
#text {{ font-family: monospace; font-size: 15px; line-height: 1.9; white-space: pre-wrap; }}
#text span {{ padding: 1px 0; }}
#legend span {{ font-family: monospace; padding: 2px 6px; }}
</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p>Unit {unit} of layer {result.layer}{" (reverse direction)" if result.reverse else ""}: {what}, at each
{"character" if result.level == "char" else "word"} ({len(result.tokens)} tokens, {result.unknown} unknown to the
model). Values range from {values.min():+.3f} to {values.max():+.3f}; hover a token to read its value.</p>
<p id="legend">{legend}</p>
<div id="text">{joiner.join(spans)}</div>
</body></html>
"""


def plot(result: Activations, unit: int, title: str, target, max_rows: int = 40) -> None:
    """The tokens on a grid (60 characters or 10 words a row), each cell coloured by `unit`'s value."""
    from matplotlib.colors import LinearSegmentedColormap

    columns = 60 if result.level == "char" else 10
    rows = min(max_rows, -(-len(result.tokens) // columns))
    shown = rows * columns
    grid = np.full(shown, np.nan)
    values = result.values[:shown, unit]
    grid[:len(values)] = values
    cell_width = 0.16 if result.level == "char" else 0.9
    fig, axes = report.figure(1, 1, width=max(6.0, columns * cell_width + 1.5), height=1.2 + 0.32 * rows)
    ax = axes[0]
    cmap = LinearSegmentedColormap.from_list("unit", ["blue", "white", "red"])
    image = ax.imshow(grid.reshape(rows, columns), cmap=cmap, vmin=-1, vmax=1, aspect="auto")
    for i, token in enumerate(result.tokens[:shown]):
        text = "\u21b5" if token == "\n" else token
        ax.text(i % columns, i // columns, text, ha="center", va="center",
                fontsize=8 if result.level == "char" else 7, family="monospace")
    ax.set_xticks([])
    ax.set_yticks([])
    cut = f" (first {shown} of {len(result.tokens)} tokens)" if shown < len(result.tokens) else ""
    direction = ", reverse direction" if result.reverse else ""
    ax.set_title(f"{title}: {result.kind}, layer {result.layer}{direction}{cut}", fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.03, pad=0.01)
    report.save_png(fig, target)
