// Raw outputs of a run page: one gzip-compressed JSON list per page (a run's trials print nearly the
// same text, so it packs ~8x), unpacked in the browser the first time a trial's output is opened.
"use strict";
let rawOutputs = null;

async function loadRawOutputs() {
  if (rawOutputs === null) {
    const packed = document.getElementById("raw-outputs").textContent.trim();
    const bytes = Uint8Array.from(atob(packed), (c) => c.charCodeAt(0));
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    rawOutputs = JSON.parse(await new Response(stream).text());
  }
  return rawOutputs;
}

// Each trial row's last cell gets its raw output's disclosure here rather than in the page: the
// outputs need this script anyway, and a 1,000-run site is 1 MB smaller without 12 copies a page.
if (document.getElementById("raw-outputs")) {
  const rows = [...document.querySelectorAll("table.trials tr")].slice(1);  // after the header
  rows.forEach((row, trial) => {
    const details = document.createElement("details");
    details.className = "raw";
    details.dataset.trial = String(trial);
    details.append(Object.assign(document.createElement("summary"), { textContent: "raw output" }));
    details.append(document.createElement("pre"));
    row.lastElementChild.append(details);
  });
}

for (const details of document.querySelectorAll("details.raw")) {
  details.addEventListener("toggle", async () => {
    const pre = details.querySelector("pre");
    if (!details.open || pre.dataset.loaded) return;
    const outputs = await loadRawOutputs();
    pre.textContent = outputs[Number(details.dataset.trial)];  // text, never markup
    pre.dataset.loaded = "1";
  });
}
