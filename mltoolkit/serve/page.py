"""``GET /``: one plain HTML page for a person to try the served model (no framework, no external file).

It reads ``/metadata`` to learn the input kind, then shows one form: choose an image (and see the class or
the mask overlay), paste a row or an observation as JSON, or type a user id. Answers appear below the form
as a short summary and the JSON the API returned.
"""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>mltk serve</title>
<style>
  body { font-family: system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
  textarea { width: 100%; height: 7rem; font-family: monospace; }
  pre { background: #f4f4f4; padding: .75rem; overflow: auto; max-height: 24rem; }
  #overlay { max-width: 100%; margin-top: .5rem; }
  .hidden { display: none; }
  .error { color: #b00020; }
</style>
</head>
<body>
<h1>mltk serve</h1>
<p id="about">Loading the model's metadata&hellip;</p>
<form id="form" class="hidden">
  <div id="image-input" class="hidden"><label>Image <input type="file" id="image" accept="image/*"></label></div>
  <div id="json-input" class="hidden"><label for="json">Input (JSON)</label><textarea id="json"></textarea></div>
  <div id="user-input" class="hidden"><label>User id <input type="text" id="user"></label></div>
  <p><button type="submit" id="submit">Predict</button></p>
</form>
<p id="answer"></p>
<img id="overlay" class="hidden" alt="mask overlay">
<pre id="result" class="hidden"></pre>
<script>
const $ = (id) => document.getElementById(id);
let kind = null;
const examples = {
  rows: (m) => JSON.stringify(Object.fromEntries((m.features || []).map((f) => [f.name || f, 0])), null, 1),
  observations: (m) => JSON.stringify(zeros(m.observation_shape || [4])),
};
const zeros = (shape) => (shape.length ? Array.from({ length: shape[0] }, () => zeros(shape.slice(1))) : 0);

function summary(records) {
  if (!records.length) return "No records.";
  const first = records[0];
  if (kind === "users") return "Recommended: " + records.map((r) => r.item).join(", ");
  if (kind === "image" && first.fractions) return "Class fractions: " + JSON.stringify(first.fractions);
  for (const key of ["class", "label", "prediction", "action", "value"]) {
    if (key in first) return key + ": " + records.map((r) => r[key]).join(", ");
  }
  return records.length + " record(s)";
}

async function send() {
  const init = { method: "POST", headers: {} };
  let url = "/predict";
  if (kind === "image") {
    const file = $("image").files[0];
    if (!file) throw new Error("choose an image first");
    init.body = new FormData();
    init.body.append("file", file);
    url += "?overlay=true";
  } else {
    init.headers["Content-Type"] = "application/json";
    init.body = kind === "users" ? JSON.stringify({ user: $("user").value }) : $("json").value;
  }
  const response = await fetch(url, init);
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error || response.statusText);
  return answer.predictions;
}

$("form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("answer").className = "";
  $("answer").textContent = "Working\\u2026";
  $("overlay").classList.add("hidden");
  try {
    const records = await send();
    $("answer").textContent = summary(records);
    const short = ([k, v]) => [k, typeof v === "string" && v.length > 200 ? "(PNG, base64)" : v];
    const shown = records.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => k !== "overlay").map(short)));
    $("result").textContent = JSON.stringify(shown, null, 1);
    $("result").classList.remove("hidden");
    if (records.length && records[0].overlay) {
      $("overlay").src = "data:image/png;base64," + records[0].overlay;
      $("overlay").classList.remove("hidden");
    }
  } catch (error) {
    $("answer").className = "error";
    $("answer").textContent = "Error: " + error.message;
  }
});

fetch("/metadata").then((r) => r.json()).then((m) => {
  kind = m.serves;
  const run = m.run ? ", run " + m.run : "";
  $("about").textContent = "Technique " + m.technique + run + " (mltk " + m.mltk_version + ").";
  $(kind === "image" ? "image-input" : kind === "users" ? "user-input" : "json-input").classList.remove("hidden");
  if (examples[kind]) $("json").value = examples[kind](m);
  $("form").classList.remove("hidden");
}).catch((error) => { $("about").textContent = "Could not read /metadata: " + error.message; });
</script>
</body>
</html>
"""
