// The rnnkit page. It asks /v1/model what the bundle does and shows that task's form:
//   sentiment: a review -> /v1/explain -> label, probability bar and the words that pushed it most
//   charlm:    a prime, length, temperature, top-k, seed -> /v1/generate (streamed NDJSON) -> the text
//   seq2seq:   a source text -> /v1/translate -> the translation
// No external resources; everything comes from this server.
"use strict";

const $ = (id) => document.getElementById(id);
const TASKS = {
  sentiment: { title: "sentiment", view: "sentiment-view" },
  charlm: { title: "text generation", view: "charlm-view" },
  seq2seq: { title: "translation", view: "seq2seq-view" },
};
const RESULTS = ["result", "generation", "translation-result"];

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
  if (!task) return;
  $("task").textContent = task.title;
  document.title = `rnnkit · ${task.title}`;
  $(task.view).hidden = false;
  if (info.task === "charlm" && info.generation) setUpGeneration(info.generation);
}

function setUpGeneration(g) {
  $("length").max = g.max_length;
  $("length").value = Math.min(Number($("length").value), g.max_length);
  $("top-k").max = g.vocabulary;
  $("top-k").placeholder = `all ${g.vocabulary}`;
  $("prime").title = `the model knows ${g.vocabulary} characters; others are left out (and listed)`;
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

async function busy(button, work) {
  button.disabled = true;
  try {
    await work();
  } catch (err) {
    showError(`the server did not answer: ${err.message}`);
  } finally {
    button.disabled = false;
  }
}

// --------------------------------------------------------------------------- sentiment

function showWords(words) {
  const list = $("words");
  list.replaceChildren();
  const largest = Math.max(1e-9, ...words.map((w) => Math.abs(w.effect)));
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
    value.textContent = (w.effect >= 0 ? "+" : "−") + Math.abs(w.effect).toFixed(3);
    item.append(word, track, value);
    list.append(item);
  }
}

function showResult(data) {
  const p = data.prediction;
  $("label").textContent = p.label;
  $("label").className = p.label;
  $("probability").textContent = `${(100 * p.probability).toFixed(1)}%`;
  $("bar-fill").style.width = `${(100 * p.probability_positive).toFixed(1)}%`;
  $("bar").setAttribute("aria-label", `probability positive ${p.probability_positive.toFixed(3)}`);
  const notes = [`${p.tokens} tokens`];
  if (p.unknown) notes.push(`${p.unknown} not in the vocabulary`);
  if (p.truncated) notes.push("truncated to the model's maximum length");
  if (data.words_total > data.words_considered) notes.push(`explained the first ${data.words_considered} of ${data.words_total} distinct words`);
  $("notes").textContent = notes.join(" · ");
  showWords(data.words);
  showOnly("result");
}

async function judge(event) {
  event.preventDefault();
  await busy($("judge"), async () => {
    const response = await postJSON("/v1/explain", { text: $("review").value, top_k: 8 });
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
  const notes = [`${length} characters`, `seed ${facts.seed}`, `temperature ${facts.temperature}`];
  if (facts.top_k !== null) notes.push(`top-k ${facts.top_k}`);
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

$("form").addEventListener("submit", judge);
$("generate-form").addEventListener("submit", generate);
$("translate-form").addEventListener("submit", translate);
describeModel();
