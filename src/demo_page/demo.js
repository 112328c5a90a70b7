// progrestore demo page: plain JS, no build step, nothing from the internet (src/demo.py serves it).
"use strict";

const $ = (id) => document.getElementById(id);
let settings = null;
let inputUrl = null;

function setStatus(text) { $("status").textContent = text || ""; }

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = !text;
}

function describePrompt() {
  if (!settings) return;
  const choice = $("prompt").value;
  const task = $("task").value === "checkpoint" ? settings.default_task : $("task").value;
  $("text-row").hidden = choice !== "text";
  $("caption-row").hidden = !(choice === "checkpoint" && settings.prompt_mode === "adaptive");
  let preview = "";
  if (choice === "uniform" || (choice === "checkpoint" && settings.prompt_mode === "uniform")) {
    preview = `prompt: "${settings.uniform_prompts[task] || ""}"`;
  } else if (choice === "checkpoint") {
    preview = `prompt: the ${task} task's adaptive template with your caption (or "the scene")`;
  }
  $("prompt-preview").textContent = preview;
}

async function loadSettings() {
  const answer = await fetch("/api/config");
  settings = await answer.json();
  $("checkpoint").textContent =
    `checkpoint ${settings.checkpoint} (model ${settings.model}, trained for ${settings.default_task}, ` +
    `${settings.prompt_mode} prompts)`;
  const task = $("task");
  task.replaceChildren();
  const first = document.createElement("option");
  first.value = "checkpoint";
  first.textContent = `the checkpoint's (${settings.default_task})`;
  task.append(first);
  for (const name of settings.tasks) {
    const option = document.createElement("option");
    option.value = name;
    option.textContent = name;
    task.append(option);
  }
  $("prompt").options[0].textContent = `the checkpoint's prompt mode (${settings.prompt_mode})`;
  const kinds = settings.image_suffixes.concat(settings.video_suffixes);
  $("file").accept = kinds.join(",");
  $("limits").textContent =
    `photos ${settings.image_suffixes.join(" ")} up to ${settings.max_pixels} pixels` +
    `; clips ${settings.video_suffixes.join(" ")} up to ${settings.max_video_seconds} s` +
    `; files up to ${settings.max_upload_mb} MB`;
  describePrompt();
}

function link(name, url) {
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.textContent = name;
  return a;
}

function showResult(job) {
  const files = job.files;
  $("used").textContent =
    `task ${job.task}, seed ${job.seed}, prompt "${job.prompt}" (${job.message})`;
  const isImage = job.kind === "image";
  $("image-result").hidden = !isImage;
  $("video-result").hidden = isImage;
  if (isImage) {
    $("input-preview").src = inputUrl || "";
    $("restored").src = files["restored.png"];
    $("trajectory").src = files["trajectory.mp4"];
    $("strip").src = files["strip.png"];
  } else {
    $("restored-video").src = files["restored.mp4"];
    if (files["side_by_side.mp4"]) $("side-by-side").src = files["side_by_side.mp4"];
  }
  const downloads = $("downloads");
  downloads.replaceChildren();
  const order = isImage
    ? ["restored.png", "trajectory.mp4", "strip.png", "trajectory.gif", "restore.json"]
    : ["restored.mp4", "side_by_side.mp4", "restore.json"];
  for (const name of order) if (files[name]) downloads.append(link(name, files[name]));
  $("result").hidden = false;
}

async function poll(id) {
  for (;;) {
    const answer = await fetch(`/api/jobs/${id}`);
    const job = await answer.json();
    if (!answer.ok) throw new Error(job.error || `HTTP ${answer.status}`);
    if (job.state === "done") {
      setStatus(`restored ${job.name}: ${job.message}`);
      showResult(job);
      return;
    }
    if (job.state === "error") {
      setStatus("");
      showError(job.error);
      return;
    }
    setStatus(`${job.name}: ${job.message}${job.state === "running" ? ` (${job.seconds} s)` : ""}`);
    await new Promise((done) => setTimeout(done, 400));
  }
}

async function restore(event) {
  event.preventDefault();
  showError("");
  const file = $("file").files[0];
  if (!file) { showError("choose a photo or a clip first"); return; }
  if (settings && file.size > settings.max_upload_mb * 1048576) {
    showError(`the upload is ${(file.size / 1048576).toFixed(1)} MB; this demo takes files up to ` +
      `${settings.max_upload_mb} MB (max_upload_mb=${settings.max_upload_mb})`);
    return;
  }
  if (inputUrl) URL.revokeObjectURL(inputUrl);
  inputUrl = URL.createObjectURL(file);
  const params = new URLSearchParams({
    task: $("task").value, prompt: $("prompt").value, text: $("text").value,
    caption: $("caption").value, seed: $("seed").value,
  });
  $("restore").disabled = true;
  $("result").hidden = true;
  setStatus(`uploading ${file.name}…`);
  try {
    const answer = await fetch(`/api/restore?${params}`, {
      method: "POST",
      headers: { "Content-Type": file.type || "application/octet-stream", "X-Filename": encodeURIComponent(file.name) },
      body: file,
    });
    const job = await answer.json();
    if (!answer.ok) { setStatus(""); showError(job.error || `HTTP ${answer.status}`); return; }
    await poll(job.id);
  } catch (err) {
    setStatus("");
    showError(`the server did not answer (${err.message}): is python -m src.demo still running?`);
  } finally {
    $("restore").disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("form").addEventListener("submit", restore);
  $("prompt").addEventListener("change", describePrompt);
  $("task").addEventListener("change", describePrompt);
  loadSettings().catch((err) => showError(`could not load the settings: ${err.message}`));
});
