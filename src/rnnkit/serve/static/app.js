// The rnnkit page. It asks /v1/model what the bundle does and shows that task's form:
//   sentiment: a review -> /v1/explain -> label, probability bar and the words that pushed it most
//   charlm, wordlm: a prime, length, temperature, top-k, seed -> /v1/generate (streamed NDJSON) -> the text
//   seq2seq:   a source text -> /v1/translate -> the translation
//   classify:  a text -> /v1/predict -> the label (or tags) and a bar per class; Explain: /v1/explain -> the text with
//              the words that pushed the prediction highlighted
// The model line also lists the bundle's labels and its training metrics. Ctrl/Cmd+Enter in a text box submits.
// No external resources; everything comes from this server.
"use strict";

const $ = (id) => document.getElementById(id);
const TASKS = {
  sentiment: { title: "sentiment", view: "sentiment-view" },
  charlm: { title: "text generation", view: "charlm-view" },
  wordlm: { title: "text generation (words)", view: "charlm-view" },
  seq2seq: { title: "translation", view: "seq2seq-view" },
  classify: { title: "text classification", view: "classify-view" },
};
const RESULTS = ["result", "generation", "translation-result", "classification"];
const EXPLAIN_WORDS = 8; // how many of the most influential words an explanation shows
const MAX_CLASSES = 10; // classes drawn as bars; the rest are counted
const MAX_LABELS = 30; // labels listed in the model line
let tagThreshold = 0.5; // multi-label classify: a tag is predicted at or above this (from /v1/model)

async function describeModel() {
  let info;
  try {
    const response = await fetch("/v1/model");
    info = await response.json();
    if (!response.ok) throw new Error(info.error ? info.error.message : response.statusText);
  } catch (err) {
    $("model").textContent = `could not read the model description: ${err.message}`;
    return;
  }
  const c = info.config;
  const layers = `${c.bidirectional ? "bi" : ""}${c.cell.toUpperCase()}(${c.hidden_size})`;
  const task = TASKS[info.task];
  $("model").textContent = `${info.bundle}: ${layers} × ${c.num_layers}, vocabulary ${c.vocab_size}, ` +
    `${info.engine} engine` + (task ? "" : ` — this page cannot drive a ${info.task} model; see /docs`);
  showFacts("model-labels", labelsLine(info));
  showFacts("model-metrics", metricsLine(info.metrics));
  if (!task) return;
  $("task").textContent = task.title;
  document.title = `rnnkit · ${task.title}`;
  $(task.view).hidden = false;
  if ((info.task === "charlm" || info.task === "wordlm") && info.generation) setUpGeneration(info.generation);
  if (info.task === "classify" && info.settings && typeof info.settings.threshold === "number") {
    tagThreshold = info.settings.threshold;
  }
}

function showFacts(id, line) {
  $(id).textContent = line;
  $(id).hidden = !line;
}

function labelsLine(info) {
  const labels = info.labels;
  if (!Array.isArray(labels) || !labels.length) return "";
  const multi = info.settings && info.settings.multi_label;
  const kind = multi ? `tags (any number per text, each predicted at ${percent(info.settings.threshold)} or more)` : "classes";
  const more = labels.length > MAX_LABELS ? `, … and ${labels.length - MAX_LABELS} more` : "";
  return `${labels.length} ${kind}: ${labels.slice(0, MAX_LABELS).join(", ")}${more}`;
}

function metricsLine(metrics) {
  const shown = Object.entries(metrics || {}).filter(([, v]) => typeof v === "number" && Number.isFinite(v));
  if (!shown.length) return "";
  return "trained: " + shown.map(([name, v]) => `${name} ${Number.isInteger(v) ? v : Number(v.toPrecision(4))}`).join(" · ");
}

function percent(p) {
  return p > 0 && p < 0.001 ? "<0.1%" : `${(100 * p).toFixed(1)}%`;
}

let generationUnit = "characters"; // what /v1/generate counts: characters (charlm) or words (wordlm)

function setUpGeneration(g) {
  generationUnit = g.unit === "words" ? "words" : "characters";
  $("length-unit").textContent = generationUnit;
  if (generationUnit === "words") {
    $("length").value = g.defaults.length;
    $("prime").placeholder = "This movie";
  }
  $("length").max = g.max_length;
  $("length").value = Math.min(Number($("length").value), g.max_length);
  $("top-k").max = g.vocabulary;
  $("top-k").placeholder = `all ${g.vocabulary}`;
  $("prime").title = generationUnit === "words"
    ? `the model knows ${g.vocabulary} words; others are read as <unk> (and listed)`
    : `the model knows ${g.vocabulary} characters; others are left out (and listed)`;
}

function showOnly(id) {
  $("error").hidden = true;
  for (const r of RESULTS) $(r).hidden = r !== id;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
  for (const r of RESULTS) $(r).hidden = true;
}

async function postJSON(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  return response;
}

async function errorOf(response) {
  try {
    const data = await response.json();
    return data.error ? data.error.message : `error ${response.status}`;
  } catch (err) {
    return `error ${response.status}`;
  }
}

async function busy(buttons, work) {
  buttons = [].concat(buttons); // one button, or all of a form's
  for (const b of buttons) b.disabled = true;
  try {
    await work();
  } catch (err) {
    showError(`the server did not answer: ${err.message}`);
  } finally {
    for (const b of buttons) b.disabled = false;
  }
}

// Ctrl+Enter (Cmd+Enter on a Mac) in a form's text box submits the form, unless it is already busy.
function submitOnCtrlEnter(event) {
  if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey) || event.isComposing) return;
  const form = event.target.form;
  if (!form) return;
  event.preventDefault();
  const submit = form.querySelector("button[type=submit]");
  if (!submit || !submit.disabled) form.requestSubmit(submit || undefined);
}

// --------------------------------------------------------------------------- explanations (sentiment, classify)

function largestEffect(words) {
  return Math.max(1e-9, ...words.map((w) => Math.abs(w.effect)));
}

function signed(effect) {
  return (effect >= 0 ? "+" : "−") + Math.abs(effect).toFixed(3);
}

// The words that pushed a prediction, largest first, each with a bar from the middle: right (green) pushed the
// score up, left (red) down. `list` is an <ol class="words">.
function showWords(list, words) {
  list.replaceChildren();
  const largest = largestEffect(words);
  for (const w of words) {
    const side = w.effect >= 0 ? "positive" : "negative";
    const item = document.createElement("li");
    const word = document.createElement("span");
    word.className = "word " + side;
    word.textContent = w.count > 1 ? `${w.word} ×${w.count}` : w.word;
    const track = document.createElement("span");
    track.className = "track";
    const push = document.createElement("span");
    push.className = "push " + side;
    push.style.width = `${(50 * Math.abs(w.effect)) / largest}%`;
    track.append(push);
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = signed(w.effect);
    item.append(word, track, value);
    list.append(item);
  }
}

// The server's words are its tokenizer's (rnnkit.data.vocab.tokenize: lower-cased runs of letters and digits, with
// inner apostrophes, and ! ?; <br /> is a space); this finds them again in the text as typed.
const TOKEN = /<br\s*\/?>|[\p{L}\p{N}]+(?:'[\p{L}\p{N}]+)*|[!?]/giu;

// `text` into `element`, each explained word marked where it occurs: green pushed the score up, red down, the
// stronger the colour the larger the push.
function showHighlighted(element, text, words) {
  const effects = new Map(words.map((w) => [w.word, w.effect]));
  const largest = largestEffect(words);
  const parts = [];
  let last = 0;
  for (const match of text.matchAll(TOKEN)) {
    const effect = effects.get(match[0].toLowerCase());
    if (effect === undefined) continue;
    parts.push(document.createTextNode(text.slice(last, match.index)));
    const mark = document.createElement("mark");
    mark.className = effect >= 0 ? "positive" : "negative";
    mark.style.setProperty("--strength", (0.15 + (0.6 * Math.abs(effect)) / largest).toFixed(2));
    mark.title = signed(effect);
    mark.textContent = match[0];
    parts.push(mark);
    last = match.index + match[0].length;
  }
  parts.push(document.createTextNode(text.slice(last)));
  element.replaceChildren(...parts);
}

// tokens, unknown words, truncation; with an explanation, how many words it considered
function textNotes(p, explained) {
  const notes = [`${p.tokens} tokens`];
  if (p.unknown) notes.push(`${p.unknown} not in the vocabulary`);
  if (p.truncated) notes.push("truncated to the model's maximum length");
  if (explained && explained.words_total > explained.words_considered) {
    notes.push(`explained the first ${explained.words_considered} of ${explained.words_total} distinct words`);
  }
  return notes.join(" · ");
}

// --------------------------------------------------------------------------- sentiment

function showResult(data) {
  const p = data.prediction;
  $("label").textContent = p.label;
  $("label").className = p.label;
  $("probability").textContent = `${(100 * p.probability).toFixed(1)}%`;
  $("bar-fill").style.width = `${(100 * p.probability_positive).toFixed(1)}%`;
  $("bar").setAttribute("aria-label", `probability positive ${p.probability_positive.toFixed(3)}`);
  $("notes").textContent = textNotes(p, data);
  showWords($("words"), data.words);
  showOnly("result");
}

async function judge(event) {
  event.preventDefault();
  await busy($("judge"), async () => {
    const response = await postJSON("/v1/explain", { text: $("review").value, top_k: EXPLAIN_WORDS });
    if (!response.ok) return showError(await errorOf(response));
    showResult(await response.json());
  });
}

// --------------------------------------------------------------------------- generation

function numberOrNothing(id) {
  const raw = $(id).value.trim();
  return raw === "" ? undefined : Number(raw);
}

function generationNotes(facts, length) {
  const notes = [`${length} ${generationUnit}`, `seed ${facts.seed}`, `temperature ${facts.temperature}`];
  if (facts.top_k !== null) notes.push(`top-k ${facts.top_k}`);
  if (facts.unknown_words) {
    if (facts.truncated) notes.push("read only the end of the prime");
    if (facts.unknown) {
      const which = facts.unknown_words.map((u) => `${u.word}${u.count > 1 ? " ×" + u.count : ""}`);
      notes.push(`read ${facts.unknown} prime word(s) outside the vocabulary as <unk>: ${which.join(", ")}`);
    }
    return notes.join(" · ");
  }
  if (facts.truncated) notes.push(`read only the last ${facts.prime_read + facts.unknown} characters of the prime`);
  if (facts.unknown) {
    const which = facts.unknown_characters.map((u) => `${u.code_point}${u.count > 1 ? " ×" + u.count : ""}`);
    notes.push(`left out ${facts.unknown} prime character(s) the model never saw: ${which.join(", ")}`);
  }
  return notes.join(" · ");
}

async function generate(event) {
  event.preventDefault();
  await busy($("generate"), async () => {
    const prime = $("prime").value;
    const body = { prime, stream: true, length: numberOrNothing("length"), temperature: numberOrNothing("temperature"),
                   top_k: numberOrNothing("top-k") ?? null, seed: numberOrNothing("seed") ?? null };
    const response = await postJSON("/v1/generate", body);
    if (!response.ok) return showError(await errorOf(response));
    $("prime-shown").textContent = prime;
    $("continuation").textContent = "";
    $("generation-notes").textContent = "writing…";
    showOnly("generation");
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let pending = "";
    let facts = null;
    for (;;) {
      const { value, done } = await reader.read();
      pending += decoder.decode(value || new Uint8Array(), { stream: !done });
      const lines = pending.split("\n");
      pending = lines.pop();
      for (const line of lines) {
        if (!line) continue;
        const item = JSON.parse(line);
        if (item.error) return showError(item.error.message);
        if (item.text !== undefined) $("continuation").textContent += item.text;
        else if (item.done) $("generation-notes").textContent = generationNotes(facts, item.length);
        else facts = item;
      }
      if (done) break;
    }
  });
}

// --------------------------------------------------------------------------- translation

async function translate(event) {
  event.preventDefault();
  await busy($("translate"), async () => {
    const response = await postJSON("/v1/translate", { text: $("source").value, truncate: true });
    if (!response.ok) return showError(await errorOf(response));
    const t = (await response.json()).translation;
    $("translation").textContent = t.translation;
    const notes = [`${t.tokens} source tokens`, `log-probability ${t.score.toFixed(3)}`];
    if (t.unknown) notes.push(`${t.unknown} not in the vocabulary`);
    if (t.truncated) notes.push("the source was cut to the model's maximum length");
    if (!t.finished) notes.push("stopped at the maximum output length");
    $("translation-notes").textContent = notes.join(" · ");
    showOnly("translation-result");
  });
}

// --------------------------------------------------------------------------- classification

// One class's row: its name, a bar as long as its probability, the probability.
function classRow(label, probability, chosen) {
  const item = document.createElement("li");
  item.className = chosen ? "chosen" : "";
  item.setAttribute("aria-label", `${label}: ${percent(probability)}`);
  const name = document.createElement("span");
  name.className = "name";
  name.textContent = label;
  const track = document.createElement("span");
  track.className = "track";
  const fill = document.createElement("span");
  fill.className = "fill";
  fill.style.width = `${(100 * probability).toFixed(1)}%`;
  track.append(fill);
  const value = document.createElement("span");
  value.className = "value";
  value.textContent = percent(probability);
  item.append(name, track, value);
  return item;
}

// A prediction from /v1/predict or /v1/explain: the label (multi-label: the tags) and the classes, top first.
function showClassification(p) {
  const multi = Array.isArray(p.labels);
  const chosen = new Set(multi ? p.labels : [p.label]);
  const ranked = Object.entries(p.probabilities).sort((a, b) => b[1] - a[1]);
  if (multi) {
    $("class-label").textContent = p.labels.length ? p.labels.join(", ") : "no tag";
    $("class-score").textContent = p.labels.length ? `(tags at ${percent(tagThreshold)} or more)`
      : `(none reaches ${percent(tagThreshold)}; the most likely is ${p.label}, ${percent(p.score)})`;
  } else {
    $("class-label").textContent = p.label;
    $("class-score").textContent = percent(p.score);
  }
  $("classes").replaceChildren(...ranked.slice(0, MAX_CLASSES).map(([label, q]) => classRow(label, q, chosen.has(label))));
  const rest = ranked.length - MAX_CLASSES;
  $("classes-more").textContent = rest > 0 ? `and ${rest} more ${multi ? "tags" : "classes"}, each at ` +
    `${percent(ranked[MAX_CLASSES][1])} or less` : "";
  $("classes-more").hidden = rest <= 0;
}

async function classify(event) {
  event.preventDefault();
  await busy([$("classify"), $("explain")], async () => {
    const response = await postJSON("/v1/predict", { text: $("text").value });
    if (!response.ok) return showError(await errorOf(response));
    const p = (await response.json()).prediction;
    showClassification(p);
    $("class-notes").textContent = textNotes(p);
    $("explanation").hidden = true;
    showOnly("classification");
  });
}

async function explainClass() {
  if (!$("classify-form").reportValidity()) return;
  await busy([$("classify"), $("explain")], async () => {
    const text = $("text").value;
    const response = await postJSON("/v1/explain", { text, top_k: EXPLAIN_WORDS });
    if (!response.ok) return showError(await errorOf(response));
    const data = await response.json();
    showClassification(data.prediction);
    $("class-notes").textContent = textNotes(data.prediction, data);
    $("explained").textContent = `“${data.explained}”`;
    showHighlighted($("highlighted"), text, data.words);
    showWords($("class-words"), data.words);
    $("explanation").hidden = false;
    showOnly("classification");
  });
}

$("form").addEventListener("submit", judge);
$("generate-form").addEventListener("submit", generate);
$("translate-form").addEventListener("submit", translate);
$("classify-form").addEventListener("submit", classify);
$("explain").addEventListener("click", explainClass);
document.addEventListener("keydown", submitOnCtrlEnter);
describeModel();
