// The search page: text or drawing -> /api/search(-image) -> result cards; a card opens its patent. The text search
// lives in the URL (?q=...&k=...&uspc=...&locarno=...&year=...&view=...&per_patent=...&open=KEY) so it can be shared.
// No frameworks, no CDN.
"use strict";

const $ = (id) => document.getElementById(id);
const FILTERS = ["uspc", "locarno", "year", "view"];

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function pngUrl(kind, key) {
  return "/" + kind + "/" + encodeURIComponent(key) + ".png";
}

// The form's state as URL parameters (only what differs from the defaults, so shared links stay short).
function formParams(withQuery) {
  const params = new URLSearchParams();
  if (withQuery) params.set("q", $("query").value.trim());
  if ($("k").value !== "10") params.set("k", $("k").value);
  if (!$("per-patent").checked) params.set("per_patent", "false");
  for (const name of FILTERS) {
    const value = $("f-" + name).value;
    if (value) params.set(name, value);
  }
  return params;
}

function ensureOption(select, value) {
  if (value && ![...select.options].some((o) => o.value === value)) select.append(new Option(value, value));
}

function fillForm(params) {
  $("query").value = params.get("q") || "";
  const k = params.get("k") || "10";
  ensureOption($("k"), k);
  $("k").value = k;
  $("per-patent").checked = params.get("per_patent") !== "false";
  for (const name of FILTERS) {
    const value = params.get(name) || "";
    ensureOption($("f-" + name), value);
    $("f-" + name).value = value;
  }
}

function card(hit) {
  const article = el("article", "card");
  article.dataset.key = hit.key;
  article.dataset.patent = hit.patent_id;
  const link = el("a", "thumb");
  link.href = "?" + withOpen(hit.key);
  link.addEventListener("click", (event) => {
    event.preventDefault();
    openPatent(hit.key, true);
  });
  const img = el("img");
  img.src = pngUrl("thumb", hit.key);
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
  if (hit.grant_date) facts.push(hit.grant_date);
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
  const filters = Object.entries(answer.filters || {}).map(([k, v]) => k + " " + v).join(", ");
  const where = filters ? " (" + filters + ")" : "";
  $("status").textContent = answer.hits.length
    ? answer.hits.length + " results for " + answer.query + where + " (" + answer.ms + " ms)"
    : "no results for " + answer.query + where;
  $("status").classList.remove("error");
}

function fail(message) {
  $("results").replaceChildren();
  $("status").textContent = message;
  $("status").classList.add("error");
}

async function getJson(request) {
  const response = await request;
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error || response.statusText);
  return answer;
}

async function run(request) {
  $("status").textContent = "searching…";
  $("status").classList.remove("error");
  try {
    show(await getJson(request));
  } catch (err) {
    fail("Search failed: " + err.message);
  }
}

function searchText(params) {
  const q = params.get("q") || "";
  if (!q.trim()) return fail("Type what the design looks like first.");
  const api = new URLSearchParams(params);
  api.delete("open");
  if (!api.has("k")) api.set("k", "10");
  return run(fetch("/api/search?" + api.toString()));
}

function withOpen(key) {
  const params = new URLSearchParams(window.location.search);
  params.set("open", key);
  return params.toString();
}

async function openPatent(key, remember) {
  if (remember) history.pushState(null, "", "?" + withOpen(key));
  const panel = $("patent");
  try {
    const page = await getJson(fetch("/api/patent?key=" + encodeURIComponent(key)));
    $("patent-title").textContent = page.patent_id + " · " + (page.title || "(untitled)");
    const facts = ["granted " + (page.grant_date || "?"), "US class " + (page.uspc || page.uspc_class || "?"),
                   "Locarno " + (page.locarno || page.locarno_class || "?"), page.views.length + " views"];
    const further = Array.isArray(page.uspc_further) ? page.uspc_further.join(", ") : (page.uspc_further || "");
    if (further) facts.push("further " + further);
    $("patent-facts").textContent = facts.join(" · ");
    $("patent-claim").textContent = page.claim || "";
    const link = $("patent-link");
    link.hidden = !page.public_url;
    link.href = page.public_url || "#";
    link.textContent = page.public_url ? page.patent_id + " on " + page.public_site : "";
    $("patent-views").replaceChildren(...page.views.map((view) => {
      const figure = el("figure");
      figure.dataset.key = view.key;
      const a = el("a");
      a.href = pngUrl("view", view.key);
      a.target = "_blank";
      const img = el("img");
      img.src = pngUrl("thumb", view.key);
      img.alt = page.patent_id + " FIG. " + (view.fig || "?");
      a.append(img);
      figure.append(a, el("figcaption", null, "FIG. " + (view.fig || "?") + " · " + (view.view || "view ?")));
      return figure;
    }));
    panel.hidden = false;
  } catch (err) {
    fail("Could not open " + key + ": " + err.message);
  }
}

function closePatent(remember) {
  $("patent").hidden = true;
  if (remember) {
    const params = new URLSearchParams(window.location.search);
    params.delete("open");
    history.pushState(null, "", "?" + params.toString());
  }
}

// Load what the URL says: fill the form, search, open a patent.
function fromUrl() {
  const params = new URLSearchParams(window.location.search);
  fillForm(params);
  if (params.get("q")) searchText(params);
  if (params.get("open")) openPatent(params.get("open"), false);
  else closePatent(false);
}

function submitText() {
  const params = formParams(true);
  if (!params.get("q")) return fail("Type what the design looks like first.");
  history.pushState(null, "", "?" + params.toString());
  closePatent(false);
  return searchText(params);
}

$("text-form").addEventListener("submit", (event) => {
  event.preventDefault();
  submitText();
});

for (const name of FILTERS) {
  $("f-" + name).addEventListener("change", () => { if ($("query").value.trim()) submitText(); });
}

$("patent-close").addEventListener("click", () => closePatent(true));
document.addEventListener("keydown", (event) => { if (event.key === "Escape" && !$("patent").hidden) closePatent(true); });
window.addEventListener("popstate", fromUrl);

$("drawing").addEventListener("change", () => {
  const file = $("drawing").files[0];
  if (!file) return;
  const preview = $("query-preview");
  preview.src = URL.createObjectURL(file);
  preview.hidden = false;
  const params = formParams(false);
  if (!params.has("k")) params.set("k", "10");
  params.set("name", file.name);
  run(fetch("/api/search-image?" + params.toString(), {
    method: "POST",
    headers: {"Content-Type": file.type || "application/octet-stream"},
    body: file,
  }));
});

function facetOptions(name, values) {
  const select = $("f-" + name);
  const sorted = [...values];
  if (name === "year") sorted.sort((a, b) => b.value - a.value);
  else if (name !== "view") sorted.sort((a, b) => String(a.value).localeCompare(String(b.value), "en", {numeric: true}));
  const chosen = select.value;
  for (const facet of sorted) {
    const value = String(facet.value);
    const existing = [...select.options].find((o) => o.value === value);
    const label = value + " (" + facet.views + ")";
    if (existing) existing.textContent = label;
    else select.append(new Option(label, value));
  }
  select.value = chosen;
}

fetch("/api/info").then((r) => r.json()).then((info) => {
  $("info").textContent = "release " + info.release + " · " + info.vectors + " views · model " + info.model;
  for (const name of FILTERS) facetOptions(name, (info.facets || {})[name] || []);
}).catch(() => { $("info").textContent = ""; });

fromUrl();
