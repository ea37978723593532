// The search page: text or drawing -> /api/search(-image) -> a grid of result cards. No frameworks, no CDN.
"use strict";

const $ = (id) => document.getElementById(id);

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function options() {
  return "k=" + encodeURIComponent($("k").value) + "&per_patent=" + ($("per-patent").checked ? "true" : "false");
}

function card(hit) {
  const article = el("article", "card");
  article.dataset.key = hit.key;
  article.dataset.patent = hit.patent_id;
  const link = el("a", "thumb");
  link.href = "/view/" + encodeURIComponent(hit.key) + ".png";
  link.target = "_blank";
  const img = el("img");
  img.src = "/thumb/" + encodeURIComponent(hit.key) + ".png";
  img.alt = hit.patent_id + " FIG. " + (hit.fig || "?");
  link.append(img);
  article.append(link);
  const head = el("div", "head");
  head.append(el("span", "rank", "#" + hit.rank), el("span", "patent", hit.patent_id),
              el("span", "score", hit.score.toFixed(3)));
  article.append(head);
  article.append(el("div", "title", hit.title || "(untitled)"));
  const facts = ["FIG. " + (hit.fig || "?"), hit.view || "view ?", "class " + (hit.uspc_class || "?")];
  if (hit.locarno_class) facts.push("LOC " + hit.locarno_class);
  article.append(el("div", "facts", facts.join(" · ")));
  if (hit.views && hit.views.length) {
    article.append(el("div", "more", "+" + hit.views.length + " more matching view" +
                                      (hit.views.length > 1 ? "s" : "")));
  }
  return article;
}

function show(answer) {
  const results = $("results");
  results.replaceChildren(...answer.hits.map(card));
  $("status").textContent = answer.hits.length
    ? answer.hits.length + " results for " + answer.query + " (" + answer.ms + " ms)"
    : "no results for " + answer.query;
  $("status").classList.remove("error");
}

function fail(message) {
  $("results").replaceChildren();
  $("status").textContent = message;
  $("status").classList.add("error");
}

async function run(request) {
  $("status").textContent = "searching…";
  $("status").classList.remove("error");
  try {
    const response = await request;
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error || response.statusText);
    show(answer);
  } catch (err) {
    fail("Search failed: " + err.message);
  }
}

$("text-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const q = $("query").value.trim();
  if (!q) return fail("Type what the design looks like first.");
  run(fetch("/api/search?q=" + encodeURIComponent(q) + "&" + options()));
});

$("drawing").addEventListener("change", () => {
  const file = $("drawing").files[0];
  if (!file) return;
  const preview = $("query-preview");
  preview.src = URL.createObjectURL(file);
  preview.hidden = false;
  run(fetch("/api/search-image?name=" + encodeURIComponent(file.name) + "&" + options(), {
    method: "POST",
    headers: {"Content-Type": file.type || "application/octet-stream"},
    body: file,
  }));
});

fetch("/api/info").then((r) => r.json()).then((info) => {
  $("info").textContent = "release " + info.release + " · " + info.vectors + " views · model " + info.model;
}).catch(() => { $("info").textContent = ""; });
