// The rnnkit page: sends the review to /v1/explain and shows label, probability and word effects.
// No external resources; everything comes from this server.
"use strict";

const $ = (id) => document.getElementById(id);

async function describeModel() {
  try {
    const response = await fetch("/v1/model");
    const info = await response.json();
    if (!response.ok) throw new Error(info.error ? info.error.message : response.statusText);
    const c = info.config;
    const layers = `${c.bidirectional ? "bi" : ""}${c.cell.toUpperCase()}(${c.hidden_size})`;
    $("model").textContent = `${info.bundle}: ${layers} × ${c.num_layers}, vocabulary ${c.vocab_size}, ` +
      `${info.engine} engine` + (info.task === "sentiment" ? "" : ` — this is a ${info.task} model`);
  } catch (err) {
    $("model").textContent = `could not read the model description: ${err.message}`;
  }
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
  $("result").hidden = true;
}

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
  $("error").hidden = true;
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
  $("result").hidden = false;
}

async function judge(event) {
  event.preventDefault();
  const button = $("judge");
  button.disabled = true;
  try {
    const response = await fetch("/v1/explain", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ text: $("review").value, top_k: 8 }),
    });
    const data = await response.json();
    if (!response.ok) showError(data.error ? data.error.message : `error ${response.status}`);
    else showResult(data);
  } catch (err) {
    showError(`the server did not answer: ${err.message}`);
  } finally {
    button.disabled = false;
  }
}

$("form").addEventListener("submit", judge);
describeModel();
